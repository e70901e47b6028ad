-- The collector's liveness ($1 collector, $2 lateness, $3 gap): extend its current span to now() when it
-- ended at most $3 ago, else start a new one. One row written; `until` is the only column that moves.
INSERT INTO {{.Schema}}.collector_spans AS s (collector, since, until, lateness, gap)
SELECT $1::text, coalesce((SELECT c.since FROM {{.Schema}}.collector_spans c
                            WHERE c.collector = $1::text AND c.until >= now() - $3::interval
                            ORDER BY c.since DESC LIMIT 1), now()), now(), $2::interval, $3::interval
ON CONFLICT (collector, since) DO UPDATE
SET until = greatest(s.until, excluded.until), lateness = excluded.lateness, gap = excluded.gap
