-- SKIP LOCKED: retention never waits on (or deadlocks with) a flush holding stream rows; a locked
-- row is being written, so it is not stale. The outer condition is checked again on the row
-- version a concurrent flush may have committed in between.
DELETE FROM {{.Schema}}.cumulative_streams WHERE key = ANY(ARRAY(
    SELECT key FROM {{.Schema}}.cumulative_streams WHERE seen_at <= $1 LIMIT {{.DeleteBatch}} FOR UPDATE SKIP LOCKED)) AND seen_at <= $1
