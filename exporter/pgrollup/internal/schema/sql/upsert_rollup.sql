-- One resolution's rows from the staging table, in (series_id, time) order.
INSERT INTO {{.Schema}}.{{.Res.Table}} AS r (series_id, time, value)
SELECT series_id, time, value FROM pg_temp.pgrollup_stage WHERE res = {{.Res.Index}} ORDER BY series_id, time
ON CONFLICT (series_id, time) DO UPDATE SET value = r.value + excluded.value
