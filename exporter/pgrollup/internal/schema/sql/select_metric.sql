SELECT id, metric FROM {{.Schema}}.series WHERE id = ANY($1::bigint[])
