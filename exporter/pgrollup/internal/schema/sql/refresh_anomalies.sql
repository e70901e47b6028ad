-- Recomputes the anomaly baselines as of now; returns the number of metrics with one.
SELECT {{.Schema}}.refresh_anomaly_baselines(now())
