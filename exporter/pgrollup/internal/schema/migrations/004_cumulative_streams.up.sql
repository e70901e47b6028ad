-- 004: the state of cumulative streams, so that pgrollup counts cumulative monotonic sums itself,
-- exactly, through collector restarts and across collectors (no in-memory cumulativetodelta).
--
-- {{schema}} is replaced by the configured schema (default track) before the file runs.
--
-- One row per stream: the full identity of an OpenTelemetry stream (every resource attribute,
-- service.instance.id included, the scope, the metric name and the point's attributes), hashed by
-- the exporter into key (XXH3-128). series_id is the rollup series its deltas count into (a coarser
-- identity: keep_resource_attributes). In the same transaction as the rollups, the exporter updates
-- the rows of a flush's streams in key order (one UPDATE joined in key order: the row locks are
-- taken in that order in every collector, so they never deadlock), which returns the state each
-- row held, computes each point's delta from the last cumulative value, and inserts the new
-- streams, so a crash, a replay, a retry or a second collector never loses or doubles a count. Times are Unix nanoseconds
-- as in OTLP (timestamptz would round them to microseconds). seen_at is the collector's clock at
-- the last write; retention removes the rows not seen for cumulative::max_staleness.
--
-- No index but the key: the updated columns are not indexed, so updates are HOT (fillfactor 70
-- leaves them room on the page), and retention's occasional scan for stale rows reads the table.
CREATE TABLE {{schema}}.cumulative_streams (
    key             uuid             PRIMARY KEY,
    series_id       bigint           NOT NULL,
    start_unix_nano bigint           NOT NULL,
    last_unix_nano  bigint           NOT NULL,
    last_value      double precision NOT NULL,
    seen_at         timestamptz      NOT NULL,
    -- The state the last write found (written by the same UPDATE; read through its RETURNING).
    prev_start_unix_nano bigint           NOT NULL DEFAULT 0,
    prev_last_unix_nano  bigint           NOT NULL DEFAULT 0,
    prev_value           double precision NOT NULL DEFAULT 0
) WITH (fillfactor = 70);
