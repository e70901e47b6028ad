-- One resolution's per-metric totals. They are few (one per metric and bucket): arrays rather
-- than a staging table.
INSERT INTO {{.Schema}}.{{.Res.Totals}} AS r (metric, time, value)
SELECT m, t, v FROM unnest($1::text[], $2::timestamptz[], $3::float8[]) AS u(m, t, v) ORDER BY m, t
ON CONFLICT (metric, time) DO UPDATE SET value = r.value + excluded.value
