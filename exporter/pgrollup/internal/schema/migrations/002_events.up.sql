-- 002: product events. The raw events table (one partition per UTC day), the functions that
-- create and drop its partitions, the analysts' function {{schema}}.funnel and the view
-- {{schema}}.event_errors.
--
-- {{schema}} is replaced by the configured schema (default track) before the file runs.

-- One row per kept event, exactly as the collector received it: user_id is already hashed by the
-- sampler, PII already scrubbed. adjusted_count is the record's sampling.adjusted_count (1 when
-- absent): sum(adjusted_count) estimates the events before sampling. attributes holds the record's
-- attributes that have no column of their own (click.target, scroll.depth, exception.*, ...).
CREATE TABLE {{schema}}.events (
    time           timestamptz      NOT NULL,
    name           text             NOT NULL,
    service        text             NOT NULL,
    page           text,
    user_id        text,
    country        text,
    region         text,
    attributes     jsonb            NOT NULL DEFAULT '{}',
    body           text,
    adjusted_count double precision NOT NULL DEFAULT 1
) PARTITION BY RANGE (time);
CREATE INDEX events_name_time_idx ON {{schema}}.events (name, time);
CREATE INDEX events_user_time_idx ON {{schema}}.events (user_id, time);

-- {{schema}}.ensure_event_partitions(first, last) creates the missing daily partitions from day
-- first to day last (UTC, inclusive) and returns how many it created. Several collectors may call
-- it at once: a transaction-scoped advisory lock serializes them, and each partition is created
-- as a plain table and then ATTACHed, which takes only a SHARE UPDATE EXCLUSIVE lock on the parent,
-- so writers and readers of the events table are not blocked. It runs as its owner, so the writer
-- role needs only EXECUTE.
CREATE FUNCTION {{schema}}.ensure_event_partitions(first date, last date) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $fn$
DECLARE
    d       date;
    part    text;
    created integer := 0;
BEGIN
    IF last - first > 400 THEN
        RAISE EXCEPTION 'ensure_event_partitions: % days requested, at most 400', last - first + 1;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('pgrollup-partitions:' || '{{schema}}', 0));
    FOR d IN SELECT generate_series(first, last, interval '1 day')::date LOOP
        part := 'events_p' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('{{schema}}.' || quote_ident(part)) IS NOT NULL;
        EXECUTE format('CREATE TABLE %s.%I (LIKE %s.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       '{{schema}}', part, '{{schema}}');
        EXECUTE format('ALTER TABLE %s.events ATTACH PARTITION %s.%I FOR VALUES FROM (%L) TO (%L)',
                       '{{schema}}', '{{schema}}', part,
                       (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
        created := created + 1;
    END LOOP;
    RETURN created;
END
$fn$;

-- {{schema}}.drop_event_partitions(before) drops the daily partitions of days that end at or before
-- before (UTC), and returns the days it dropped. Dropping a partition needs a short exclusive lock
-- on the events table; lock_timeout bounds how long writers queue behind it (retention tries
-- again in its next round).
CREATE FUNCTION {{schema}}.drop_event_partitions(before timestamptz) RETURNS SETOF date
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $fn$
DECLARE
    part text;
    d    date;
BEGIN
    FOR part IN
        SELECT c.relname::text
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '{{schema}}.events'::regclass AND c.relname ~ '^events_p[0-9]{8}$'
         ORDER BY c.relname
    LOOP
        d := to_date(substr(part, 9), 'YYYYMMDD');
        CONTINUE WHEN ((d + 1)::timestamp AT TIME ZONE 'UTC') > before;
        EXECUTE format('DROP TABLE %s.%I', '{{schema}}', part);
        RETURN NEXT d;
    END LOOP;
END
$fn$;

-- {{schema}}.funnel(steps, since, until, within): for each step of an ordered funnel, the users
-- who reached it in order within `within` of their first step, among the events in [since, until).
-- A user enters the funnel with their first steps[1] event; step k is their earliest steps[k]
-- event strictly after the event matched for step k-1 and no later than entry + within. Events of
-- a step that happen before the previous step (out of order) do not count.
--   users:          sum of the adjusted_count of the matched step-k records, which estimates the
--                   users before sampling (exact with sampling off; the sampler keeps or drops all
--                   of a user's events together);
--   conversion:     users / the previous step's users (NULL for step 1 or after a step with 0);
--   median_time:    the median, over those users, of the time from step k-1 to step k (unweighted;
--                   NULL for step 1).
-- Events without a user_id are ignored.
CREATE FUNCTION {{schema}}.funnel(
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
        SELECT e.user_id, e.name, e.time, e.adjusted_count
          FROM {{schema}}.events e
         WHERE e.name = ANY($1) AND e.time >= $2 AND e.time < $3 AND e.user_id IS NOT NULL
    ), reached AS (
        SELECT f.user_id, 1 AS k, f.time AS t, f.time AS t0, f.adjusted_count AS w, NULL::interval AS dt
          FROM (SELECT DISTINCT ON (ev.user_id) ev.user_id, ev.time, ev.adjusted_count
                  FROM ev WHERE ev.name = $1[1]
                 ORDER BY ev.user_id, ev.time) f
        UNION ALL
        SELECT r.user_id, r.k + 1, n.time, r.t0, n.adjusted_count, n.time - r.t
          FROM reached r
          CROSS JOIN LATERAL (
                SELECT ev.time, ev.adjusted_count
                  FROM ev
                 WHERE ev.user_id = r.user_id AND ev.name = $1[r.k + 1]
                   AND ev.time > r.t AND ev.time <= r.t0 + $4
                 ORDER BY ev.time
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
REVOKE EXECUTE ON FUNCTION {{schema}}.ensure_event_partitions(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION {{schema}}.drop_event_partitions(timestamptz) FROM PUBLIC;

-- Error events grouped by message: an event named error, or any event carrying exception.type.
-- The message is the body (track.Event's Error puts it there), else exception.message.
--   count:            estimated errors before sampling (sum of adjusted_count);
--   stored:           events actually stored;
--   first_seen, last_seen;
--   sample_type, sample_stacktrace: from the most recent occurrence.
CREATE VIEW {{schema}}.event_errors AS
SELECT coalesce(e.body, e.attributes ->> 'exception.message', '') AS message,
       sum(e.adjusted_count)                                      AS count,
       count(*)                                                   AS stored,
       min(e.time)                                                AS first_seen,
       max(e.time)                                                AS last_seen,
       (array_agg(e.attributes ->> 'exception.type' ORDER BY e.time DESC))[1]       AS sample_type,
       (array_agg(e.attributes ->> 'exception.stacktrace' ORDER BY e.time DESC))[1] AS sample_stacktrace
  FROM {{schema}}.events e
 WHERE e.name = 'error' OR e.attributes ? 'exception.type'
 GROUP BY 1;
