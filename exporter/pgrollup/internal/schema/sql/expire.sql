-- One batch of the rows of a table whose time column is at or before $1.
DELETE FROM {{.Schema}}.{{.Table}} WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM {{.Schema}}.{{.Table}} WHERE {{.Column}} <= $1 LIMIT {{.DeleteBatch}}))
