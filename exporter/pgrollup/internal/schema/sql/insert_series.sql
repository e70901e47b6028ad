INSERT INTO {{.Schema}}.series (key, metric, service, attributes)
SELECT k, m, s, a::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(k, m, s, a) ORDER BY k
ON CONFLICT (key) DO NOTHING
