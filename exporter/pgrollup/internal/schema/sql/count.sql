SELECT count(*) FROM {{.Schema}}.{{.Table}}
