-- Keys sorted, so that two collectors inserting the same keys wait on each other instead of
-- deadlocking. ON CONFLICT DO NOTHING waits for a concurrent inserter of the same key and then
-- skips it if that transaction committed: the request is counted by exactly one of them.
INSERT INTO {{.Schema}}.item_keys (key, created_at)
SELECT k, $2 FROM unnest($1::uuid[]) AS k ORDER BY k
ON CONFLICT (key) DO NOTHING RETURNING key
