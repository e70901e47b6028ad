-- 003: a faster {{schema}}.series, same signature, results, errors and grants as in 001.
--
-- {{schema}} is replaced by the configured schema (default track) before the file runs.
--
-- Where 001's version spent its time (6 hours per minute of a metric with 10 series, 3,600 minute rows;
-- see BenchmarkSeriesQuery6hPerMinute):
--   * after five calls PL/pgSQL switches to the generic plan of its RETURN QUERY, and in that plan the
--     series lookup (metric = $1 AND ($5 = '{}' OR containment)) and the time bounds have default
--     estimates, so it sorted the 3,600 rows for a GroupAggregate instead of hashing them;
--   * date_bin ran once per rollup row, although the buckets of a rollup table are already aligned to
--     its width (the exporter writes the start of the UTC minute, hour or day), so that when the step
--     equals the width, date_bin(step, time, origin) = time.
-- This version looks the series ids up first (one small statement, its own cached plan), then reads
-- the rollups with series_id = ANY(ids): one index-only range scan of (series_id, time) INCLUDE
-- (value), hashed by time, joined to the zero-filled steps by hash, and sorted (one row per step).
-- When the step equals the width of the resolution read, the rows are grouped by their time as is.
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
    IF $5 = '{}'::jsonb THEN
        ids := ARRAY(SELECT s.id FROM {{schema}}.series s WHERE s.metric = $1);
    ELSE
        ids := ARRAY(SELECT s.id FROM {{schema}}.series s
                      WHERE s.metric = $1
                        AND (s.attributes || jsonb_build_object('service', s.service)) @> $5);
    END IF;
    IF res = 'minute' THEN
        IF $4 = width THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT r.time AS t, sum(r.value) AS v
                           FROM {{schema}}.rollup_minute r
                          WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSE
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT date_bin($4, r.time, origin) AS t, sum(r.value) AS v
                           FROM {{schema}}.rollup_minute r
                          WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        END IF;
    ELSIF res = 'hour' THEN
        IF $4 = width THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT r.time AS t, sum(r.value) AS v
                           FROM {{schema}}.rollup_hour r
                          WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSE
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT date_bin($4, r.time, origin) AS t, sum(r.value) AS v
                           FROM {{schema}}.rollup_hour r
                          WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        END IF;
    ELSE
        IF $4 = width THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT r.time AS t, sum(r.value) AS v
                           FROM {{schema}}.rollup_day r
                          WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSE
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT date_bin($4, r.time, origin) AS t, sum(r.value) AS v
                           FROM {{schema}}.rollup_day r
                          WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        END IF;
    END IF;
END
$fn$;

-- CREATE OR REPLACE keeps the grants already given; as in 001, nobody gets EXECUTE by default.
REVOKE EXECUTE ON FUNCTION {{schema}}.series(text, timestamptz, timestamptz, interval, jsonb) FROM PUBLIC;
