INSERT INTO {{.Schema}}.schema_migrations (version, name) VALUES ($1, $2)
