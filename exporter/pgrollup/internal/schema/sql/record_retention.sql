-- The configured retention of one resolution, which the series function reads.
UPDATE {{.Schema}}.resolutions SET retention = $2 WHERE name = $1 AND retention IS DISTINCT FROM $2
