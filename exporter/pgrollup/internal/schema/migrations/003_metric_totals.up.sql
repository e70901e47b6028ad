-- 003: per-metric totals by minute, hour and day, and a faster {{schema}}.series (same signature, results,
-- errors and grants as in 001) that reads them when it sums every series of a metric (filter '{}', the common
-- case: "signups per minute").
--
-- {{schema}} is replaced by the configured schema (default track) before the file runs.
--
-- A metric's total per bucket is the sum of its series' rollup rows. The exporter writes it in the same
-- transaction as the rollups (sorted by (metric, time), after them), so the totals are exact and always
-- agree with the series. Reading them, series() reads one row per bucket instead of one per series and
-- bucket: for 6 hours per minute of a metric with 10 series, 360 rows instead of 3,600. The price is one
-- more row per (metric, bucket) and resolution in each flush: a few percent of the rows when metrics have
-- tens of series. Retention removes expired totals with the rollups.
--
-- The totals of the rows already stored are computed here, under a SHARE lock on the rollup tables
-- (writers wait until this migration commits). A collector of an older version keeps writing rollups
-- without totals: upgrade every collector of a schema together.
CREATE TABLE {{schema}}.total_minute (
    metric text             NOT NULL,
    time   timestamptz      NOT NULL,
    value  double precision NOT NULL,
    PRIMARY KEY (metric, time) INCLUDE (value)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
CREATE INDEX total_minute_time_brin ON {{schema}}.total_minute USING brin (time);

CREATE TABLE {{schema}}.total_hour (
    metric text             NOT NULL,
    time   timestamptz      NOT NULL,
    value  double precision NOT NULL,
    PRIMARY KEY (metric, time)
) WITH (fillfactor = 80);
CREATE INDEX total_hour_time_brin ON {{schema}}.total_hour USING brin (time);

CREATE TABLE {{schema}}.total_day (
    metric text             NOT NULL,
    time   timestamptz      NOT NULL,
    value  double precision NOT NULL,
    PRIMARY KEY (metric, time)
) WITH (fillfactor = 70);
CREATE INDEX total_day_time_brin ON {{schema}}.total_day USING brin (time);

LOCK TABLE {{schema}}.rollup_minute, {{schema}}.rollup_hour, {{schema}}.rollup_day IN SHARE MODE;
INSERT INTO {{schema}}.total_minute (metric, time, value)
SELECT s.metric, r.time, sum(r.value) FROM {{schema}}.rollup_minute r JOIN {{schema}}.series s ON s.id = r.series_id
 GROUP BY 1, 2;
INSERT INTO {{schema}}.total_hour (metric, time, value)
SELECT s.metric, r.time, sum(r.value) FROM {{schema}}.rollup_hour r JOIN {{schema}}.series s ON s.id = r.series_id
 GROUP BY 1, 2;
INSERT INTO {{schema}}.total_day (metric, time, value)
SELECT s.metric, r.time, sum(r.value) FROM {{schema}}.rollup_day r JOIN {{schema}}.series s ON s.id = r.series_id
 GROUP BY 1, 2;

-- series(). Where 001's version spent its time (6 hours per minute of a metric with 10 series, 3,600 minute rows;
-- see BenchmarkSeriesQuery6hPerMinute):
--   * after five calls PL/pgSQL switches to the generic plan of its RETURN QUERY, and in that plan the
--     series lookup (metric = $1 AND ($5 = '{}' OR containment)) and the time bounds have default
--     estimates, so it sorted the 3,600 rows for a GroupAggregate instead of hashing them;
--   * date_bin ran once per rollup row, although the buckets of a rollup table are already aligned to
--     its width (the exporter writes the start of the UTC minute, hour or day), so that when the step
--     equals the width, date_bin(step, time, origin) = time.
-- With a filter, this version looks the series ids up first (one small statement, its own cached plan), then reads
-- the rollups with series_id = ANY(ids): one index-only range scan of (series_id, time) INCLUDE
-- (value), hashed by time, joined to the zero-filled steps by hash, and sorted (one row per step).
-- When the step equals the width of the resolution read (aligned), the rows are grouped by their time as is.
-- plan_cache_mode = force_generic_plan: PL/pgSQL plans its first five calls in a session with the
-- actual values, and with the ids of a metric that has months of minutes the planner expects a large
-- share of the table in the range and picks a parallel hash aggregate (12-50 ms instead of ~1 ms);
-- the generic plan is the index-only scan above from the first call.
CREATE OR REPLACE FUNCTION {{schema}}.series(
    metric text,
    since  timestamptz,
    until  timestamptz,
    step   interval,
    filter jsonb DEFAULT '{}'
) RETURNS TABLE ("time" timestamptz, value double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
    origin constant timestamptz := timestamptz '2001-01-01 00:00:00+00';
    lo    timestamptz;
    res   text;
    width interval;
    ids   bigint[];
    aligned boolean;
BEGIN
    IF $4 IS NULL OR $4 <= interval '0' THEN
        RAISE EXCEPTION 'series: step must be a positive interval, got %', $4;
    END IF;
    IF $2 IS NULL OR $3 IS NULL OR $3 <= $2 THEN
        RAISE EXCEPTION 'series: until (%) must be after since (%)', $3, $2;
    END IF;
    lo := date_bin($4, $2, origin);
    SELECT r.name, r.width INTO res, width
      FROM {{schema}}.resolutions r
     WHERE lo >= now() - r.retention
     ORDER BY r.width
     LIMIT 1;
    aligned := $4 = width;
    IF $5 = '{}'::jsonb THEN
        -- Every series of the metric: its totals (one row per bucket instead of one per series).
        IF res = 'minute' THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                           FROM {{schema}}.total_minute r
                          WHERE r.metric = $1 AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSIF res = 'hour' THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                           FROM {{schema}}.total_hour r
                          WHERE r.metric = $1 AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSE
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                           FROM {{schema}}.total_day r
                          WHERE r.metric = $1 AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        END IF;
        RETURN;
    END IF;
    ids := ARRAY(SELECT s.id FROM {{schema}}.series s
                  WHERE s.metric = $1
                    AND (s.attributes || jsonb_build_object('service', s.service)) @> $5);
    IF res = 'minute' THEN
        RETURN QUERY
        SELECT g.t, coalesce(a.v, 0)::double precision
          FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
          LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                       FROM {{schema}}.rollup_minute r
                      WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                      GROUP BY 1) a ON a.t = g.t
         ORDER BY g.t;
    ELSIF res = 'hour' THEN
        RETURN QUERY
        SELECT g.t, coalesce(a.v, 0)::double precision
          FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
          LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                       FROM {{schema}}.rollup_hour r
                      WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                      GROUP BY 1) a ON a.t = g.t
         ORDER BY g.t;
    ELSE
        RETURN QUERY
        SELECT g.t, coalesce(a.v, 0)::double precision
          FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
          LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                       FROM {{schema}}.rollup_day r
                      WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                      GROUP BY 1) a ON a.t = g.t
         ORDER BY g.t;
    END IF;
END
$fn$;

-- CREATE OR REPLACE keeps the grants already given; as in 001, nobody gets EXECUTE by default.
REVOKE EXECUTE ON FUNCTION {{schema}}.series(text, timestamptz, timestamptz, interval, jsonb) FROM PUBLIC;
