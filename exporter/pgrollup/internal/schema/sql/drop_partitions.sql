SELECT d FROM {{.Schema}}.drop_event_partitions($1) AS d
