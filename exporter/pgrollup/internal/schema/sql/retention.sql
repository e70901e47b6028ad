SELECT name, width, retention FROM {{.Schema}}.resolutions ORDER BY width
