-- The grants of a writer role (a collector with migrate_on_start: false) and of a read-only
-- analyst role; one statement per line.
GRANT USAGE ON SCHEMA {{.Schema}} TO {{.Writer}}
GRANT SELECT, INSERT ON {{.Schema}}.series TO {{.Writer}}
GRANT SELECT, INSERT, UPDATE, DELETE ON {{range .Resolutions}}{{$.Schema}}.{{.Table}}, {{end}}{{range .Resolutions}}{{$.Schema}}.{{.Totals}}, {{end}}{{.Schema}}.item_keys, {{.Schema}}.cumulative_streams TO {{.Writer}}
GRANT SELECT, UPDATE ON {{.Schema}}.resolutions TO {{.Writer}}
GRANT SELECT ON {{.Schema}}.schema_migrations TO {{.Writer}}
GRANT SELECT, INSERT, UPDATE, DELETE ON {{.Schema}}.collector_spans, {{.Schema}}.source_seen TO {{.Writer}}
GRANT INSERT ON {{.Schema}}.events TO {{.Writer}}
GRANT EXECUTE ON FUNCTION {{.Schema}}.ensure_event_partitions(date, date), {{.Schema}}.drop_event_partitions(timestamptz) TO {{.Writer}}
GRANT USAGE ON SCHEMA {{.Schema}} TO {{.Analyst}}
GRANT SELECT ON {{range $i, $r := .Resolutions}}{{if $i}}, {{end}}{{$.Schema}}.{{$r.View}}{{end}} TO {{.Analyst}}
GRANT EXECUTE ON FUNCTION {{.Schema}}.series(text, timestamptz, timestamptz, interval, jsonb, text) TO {{.Analyst}}
GRANT SELECT ON {{.Schema}}.events, {{.Schema}}.event_errors TO {{.Analyst}}
GRANT EXECUTE ON FUNCTION {{.Schema}}.funnel(text[], timestamptz, timestamptz, interval) TO {{.Analyst}}
GRANT SELECT ON {{.Schema}}.sources, {{.Schema}}.ingestion, {{.Schema}}.metrics TO {{.Analyst}}
GRANT EXECUTE ON FUNCTION {{.Schema}}.watermark(), {{.Schema}}.incomplete_ranges(timestamptz, timestamptz) TO {{.Analyst}}
GRANT SELECT, UPDATE ON {{.Schema}}.anomaly_settings TO {{.Writer}}
GRANT EXECUTE ON FUNCTION {{.Schema}}.refresh_anomaly_baselines(timestamptz), {{.Schema}}.judge_anomalies(timestamptz) TO {{.Writer}}
GRANT EXECUTE ON FUNCTION {{.Schema}}.anomalies(timestamptz, timestamptz, interval, text) TO {{.Analyst}}
GRANT SELECT ON {{.Schema}}.anomalies_now TO {{.Analyst}}
