-- 004: per-metric totals by minute, hour and day, and {{schema}}.series reading them when it sums every
-- series of a metric (filter '{}', the common case: "signups per minute").
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

-- series(): as in 003, except that a call without a filter reads the totals.
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
        -- Every series of the metric: its totals (one row per bucket instead of one per series).
        IF res = 'minute' THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT date_bin($4, r.time, origin) AS t, sum(r.value) AS v
                           FROM {{schema}}.total_minute r
                          WHERE r.metric = $1 AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSIF res = 'hour' THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT date_bin($4, r.time, origin) AS t, sum(r.value) AS v
                           FROM {{schema}}.total_hour r
                          WHERE r.metric = $1 AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSE
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT date_bin($4, r.time, origin) AS t, sum(r.value) AS v
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
