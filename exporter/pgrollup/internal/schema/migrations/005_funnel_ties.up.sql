-- 005: {{schema}}.funnel counts ties and re-sent duplicates right (same signature, arguments, errors and
-- grants as in 002; CREATE OR REPLACE keeps the grants).
--
-- {{schema}} is replaced by the configured schema (default track) before the file runs.
--
-- What changed from 002:
--   * Ties. A step's event that has exactly the same timestamp as the event matched for the previous step
--     counts as in order (002 wanted it strictly later, so a client that stamps two steps with one clock
--     reading lost the user at that step). Order of steps is what the product defines; two events of one
--     clock reading carry no order of their own.
--   * Duplicates. Events of one user with the same name and the same timestamp (microseconds) are one event:
--     a client re-sending an event in another request stores it twice (pgrollup's idempotency key is per
--     request), and with ties allowed that copy could otherwise be matched as the next step of a funnel
--     that repeats a step name (ARRAY['view', 'view']). The weight of such an event is the largest
--     adjusted_count among its copies (copies carry the same one).
--   * An event is matched for at most one step of a user's path, which the ids of the deduplicated
--     events (used) make explicit now that ties are allowed.
--
-- {{schema}}.funnel(steps, since, until, within): for each step of an ordered funnel, the users who reached
-- it in order within `within` of their first step, among the events in [since, until).
-- A user enters the funnel with their first steps[1] event; step k is their earliest steps[k] event at or
-- after the event matched for step k-1 (a tie counts as in order), not already matched for an earlier step,
-- and no later than entry + within. Events of a step that happen before the previous step (out of order) do
-- not count.
--   users:          sum of the adjusted_count of the matched step-k events, which estimates the users before
--                   sampling (exact with sampling off; the sampler keeps or drops all of a user's events
--                   together);
--   conversion:     users / the previous step's users (NULL for step 1 or after a step with 0);
--   median_time:    the median, over those users, of the time from step k-1 to step k (unweighted; NULL for
--                   step 1).
-- Events without a user_id are ignored.
CREATE OR REPLACE FUNCTION {{schema}}.funnel(
    steps  text[],
    since  timestamptz,
    until  timestamptz,
    within interval
) RETURNS TABLE (step integer, name text, users double precision, conversion double precision, median_time interval)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
BEGIN
    IF $1 IS NULL OR cardinality($1) = 0 THEN
        RAISE EXCEPTION 'funnel: steps must hold at least one event name';
    END IF;
    IF $2 IS NULL OR $3 IS NULL OR $3 <= $2 THEN
        RAISE EXCEPTION 'funnel: until (%) must be after since (%)', $3, $2;
    END IF;
    IF $4 IS NULL OR $4 <= interval '0' THEN
        RAISE EXCEPTION 'funnel: within must be a positive interval, got %', $4;
    END IF;
    RETURN QUERY
    WITH RECURSIVE ev AS MATERIALIZED (
        SELECT row_number() OVER () AS id, d.user_id, d.name, d.time, d.adjusted_count
          FROM (SELECT e.user_id, e.name, e.time, max(e.adjusted_count) AS adjusted_count
                  FROM {{schema}}.events e
                 WHERE e.name = ANY($1) AND e.time >= $2 AND e.time < $3 AND e.user_id IS NOT NULL
                 GROUP BY e.user_id, e.name, e.time) d
    ), reached AS (
        SELECT f.user_id, 1 AS k, f.time AS t, f.time AS t0, f.adjusted_count AS w, NULL::interval AS dt,
               ARRAY[f.id] AS used
          FROM (SELECT DISTINCT ON (ev.user_id) ev.user_id, ev.id, ev.time, ev.adjusted_count
                  FROM ev WHERE ev.name = $1[1]
                 ORDER BY ev.user_id, ev.time, ev.id) f
        UNION ALL
        SELECT r.user_id, r.k + 1, n.time, r.t0, n.adjusted_count, n.time - r.t, r.used || n.id
          FROM reached r
          CROSS JOIN LATERAL (
                SELECT ev.id, ev.time, ev.adjusted_count
                  FROM ev
                 WHERE ev.user_id = r.user_id AND ev.name = $1[r.k + 1]
                   AND ev.time >= r.t AND ev.time <= r.t0 + $4
                   AND ev.id <> ALL (r.used)
                 ORDER BY ev.time, ev.id
                 LIMIT 1) n
         WHERE r.k < cardinality($1)
    ), per_step AS (
        SELECT r.k, sum(r.w) AS users,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.dt)) AS median_s
          FROM reached r GROUP BY r.k
    ), numbered AS (
        SELECT s.k::integer AS k, $1[s.k] AS name, coalesce(p.users, 0)::double precision AS users, p.median_s
          FROM generate_subscripts($1, 1) AS s(k) LEFT JOIN per_step p ON p.k = s.k
    )
    SELECT n.k, n.name, n.users,
           CASE WHEN n.k = 1 THEN NULL
                ELSE n.users / nullif(lag(n.users) OVER (ORDER BY n.k), 0) END,
           CASE WHEN n.k = 1 OR n.median_s IS NULL THEN NULL
                ELSE make_interval(secs => n.median_s) END
      FROM numbered n
     ORDER BY n.k;
END
$fn$;

REVOKE EXECUTE ON FUNCTION {{schema}}.funnel(text[], timestamptz, timestamptz, interval) FROM PUBLIC;
