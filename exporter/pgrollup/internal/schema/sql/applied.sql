SELECT version, name, applied_at FROM {{.Schema}}.schema_migrations ORDER BY version
