-- Records anomalies::time_zone ($1), the zone of the seasonal slots of the next refresh.
UPDATE {{.Schema}}.anomaly_settings SET time_zone = $1 WHERE time_zone IS DISTINCT FROM $1
