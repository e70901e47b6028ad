SELECT key, id FROM {{.Schema}}.series WHERE key = ANY($1::uuid[])
