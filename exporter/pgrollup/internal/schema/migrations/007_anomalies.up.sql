-- 007: anomalies. Each metric's own baseline (seasonal by local hour of week or of day, times its recent level),
-- materialised in {{schema}}.anomaly_baselines by {{schema}}.refresh_anomaly_baselines (run by the exporter on a
-- schedule, one collector at a time), and {{schema}}.anomalies, which judges the complete buckets of a range
-- against it with a count distribution; {{schema}}.anomalies_now is what is anomalous now.
--
-- {{schema}} is replaced by the configured schema (default track) before the file runs.
-- The model, the score and the rules are documented in exporter/pgrollup/README.md ("Anomalies").

-- The time zone of the seasonal slots (hour of day, day of week), written by the exporter at start from its
-- anomalies::time_zone. One row.
CREATE TABLE {{schema}}.anomaly_settings (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    time_zone text    NOT NULL DEFAULT 'UTC'
);
INSERT INTO {{schema}}.anomaly_settings (id, time_zone) VALUES (true, 'UTC');

-- One row per judged metric, replaced whole by each refresh.
--   baseline:   'weekly' (>= 2 weeks of complete hours: 168 slots, local hour of the week),
--               'daily' (>= 2 days: 24 slots, local hour of the day), 'recent' (>= 3 hours: 1 slot, the median
--               of the last 24 hours). A metric with less history has no row and is not judged.
--   rates:      the expected count per minute of each slot before the level (the median of the slot's hourly
--               totals over up to 6 weeks, / 60), floored at 0.1 per hour; slot 0 is Monday 00:00-01:00 local.
--   level:      the recent level: the median over the last 6 complete hours of (actual + 5) / (seasonal + 5),
--               clamped to [0.5, 2]; 1 for 'recent'.
--   dispersion: the negative binomial's 1/size (variance = mu + dispersion * mu^2): the squared robust
--               coefficient of variation of the hourly totals around their slot's median beyond Poisson noise,
--               at least 0.01 (weekly), 0.04 (daily), 0.1 (recent).
--   hours:      the complete hours of history the baseline was computed from (at most 6 weeks), all before through.
CREATE TABLE {{schema}}.anomaly_baselines (
    metric      text               PRIMARY KEY,
    baseline    text               NOT NULL CHECK (baseline IN ('weekly', 'daily', 'recent')),
    rates       double precision[] NOT NULL,
    level       double precision   NOT NULL,
    dispersion  double precision   NOT NULL,
    hours       integer            NOT NULL,
    first_hour  timestamptz        NOT NULL,
    time_zone   text               NOT NULL,
    through     timestamptz        NOT NULL,
    as_of       timestamptz        NOT NULL
);

-- jit = off on the functions below: the planner's estimates for generate_series make the judging query look costly
-- enough to JIT-compile, which took 1.4 s of a 40 ms query.

-- count_surprise(k, mu, d): the Chernoff exponent, in nats, of observing k counts where mu are expected under a
-- negative binomial with 1/size d (Poisson when d = 0): the tail probability P(X <= k) for k < mu, or P(X >= k)
-- for k > mu, is at most exp(-count_surprise) (the bound is exact for k = 0: P(0) = exp(-mu) for Poisson). It is
-- half the distribution's deviance. Plain arithmetic because PostgreSQL 15 has no lgamma().
CREATE FUNCTION {{schema}}.count_surprise(k double precision, mu double precision, d double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
SELECT CASE WHEN k > 0 THEN k * ln(k / mu) ELSE 0 END
     - CASE WHEN d > 0 THEN (k + 1 / d) * ln((k + 1 / d) / (mu + 1 / d)) ELSE k - mu END
$fn$;

-- run_surprise(v, e, vw, ew, n, d, nats): the surprise (nats) of a run of n buckets ending at a bucket of value v
-- and expectation e, the run summing vw against ew, when it qualifies to flag the bucket, else 0. A run qualifies
-- when it deviates the same way as its last bucket, and that bucket at least as much as the run's mean bucket
-- (so a bucket that recovered is not flagged for its predecessors); a spike's run also holds at least 10 counts
-- more than expected (low counts stay quiet). The surprise (two logarithms) is only computed where it can reach
-- nats: it is at most (vw - ew)^2 / ew (the Poisson's Chernoff exponent is, and the negative binomial's is
-- smaller), which rules out most buckets at once. Inlined into anomalies().
CREATE FUNCTION {{schema}}.run_surprise(v double precision, e double precision, vw double precision, ew double precision,
                                        n integer, d double precision, nats double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
SELECT CASE WHEN (v < e AND vw < ew AND v * n <= vw OR v > e AND vw > ew AND v * n >= vw AND vw - ew >= 10)
                 AND (vw - ew) * (vw - ew) >= nats * ew
            THEN {{schema}}.count_surprise(vw, ew, d) ELSE 0 END
$fn$;

-- count_bound(mu, d, nats, upper): the count at which count_surprise reaches nats, below mu (upper false; 0 when
-- even 0 is less surprising) or above it (upper true). Bisection to a relative 1e-9.
CREATE FUNCTION {{schema}}.count_bound(mu double precision, d double precision, nats double precision, upper boolean)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    lo  double precision;
    hi  double precision;
    mid double precision;
BEGIN
    IF mu <= 0 THEN
        RETURN 0;
    END IF;
    IF upper THEN
        lo := mu;
        hi := 2 * mu + 10;
        WHILE {{schema}}.count_surprise(hi, mu, d) < nats AND hi < 1e15 LOOP
            lo := hi;
            hi := hi * 4;
        END LOOP;
    ELSE
        IF {{schema}}.count_surprise(0, mu, d) <= nats THEN
            RETURN 0;
        END IF;
        lo := 0;
        hi := mu;
    END IF;
    WHILE hi - lo > 1e-9 * hi LOOP
        mid := (lo + hi) / 2;
        IF ({{schema}}.count_surprise(mid, mu, d) < nats) = upper THEN
            lo := mid;
        ELSE
            hi := mid;
        END IF;
    END LOOP;
    RETURN (lo + hi) / 2;
END
$fn$;

-- refresh_anomaly_baselines(as_of): recomputes every metric's baseline from the hours that ended at least 5 minutes
-- before as_of (through = the start of the hour holding as_of - 5 minutes; later counts may still arrive), leaving
-- out those overlapping {{schema}}.incomplete_ranges (an ingestion outage is not a quiet hour), in one statement,
-- and returns how many metrics have one. The baselines only change when through does (once an hour) or the time
-- zone does: otherwise it returns at once. The exporter runs it every anomalies::refresh_interval
-- under an advisory lock; as_of is a parameter so that the evaluation can replay history.
CREATE FUNCTION {{schema}}.refresh_anomaly_baselines(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $fn$
DECLARE
    origin constant timestamptz := timestamptz '2001-01-01 00:00:00+00';
    hi   timestamptz := date_bin(interval '1 hour', as_of - interval '5 minutes', origin);
    lo   timestamptz := hi - interval '6 weeks';
    tz   text;
    gaps tstzrange[];
    n    integer;
BEGIN
    -- One refresh at a time (the exporter also skips a round while another collector refreshes).
    PERFORM pg_advisory_xact_lock(hashtextextended('pgrollup-anomaly-refresh:' || '{{schema}}', 0));
    SELECT s.time_zone INTO tz FROM {{schema}}.anomaly_settings s;
    IF EXISTS (SELECT 1 FROM {{schema}}.anomaly_baselines b)
       AND NOT EXISTS (SELECT 1 FROM {{schema}}.anomaly_baselines b WHERE b.through <> hi OR b.time_zone <> tz) THEN
        RETURN (SELECT count(*) FROM {{schema}}.anomaly_baselines);
    END IF;
    gaps := ARRAY(SELECT tstzrange(r.since, r.until) FROM {{schema}}.incomplete_ranges(lo, hi) r);
    DELETE FROM {{schema}}.anomaly_baselines;
    -- The minutes judged against the previous baselines are judged again against the new ones.
    DELETE FROM {{schema}}.anomaly_judged;
    UPDATE {{schema}}.anomaly_judged_range SET since = NULL, until = NULL;
    WITH hours AS MATERIALIZED (
        -- The complete hours of the window with their local slots.
        SELECT h.t,
               ((extract(isodow FROM h.t AT TIME ZONE tz)::int - 1) * 24 + extract(hour FROM h.t AT TIME ZONE tz)::int) AS sw,
               extract(hour FROM h.t AT TIME ZONE tz)::int AS sd,
               h.t >= hi - interval '6 hours' AS last6,
               h.t >= hi - interval '24 hours' AS last24
          FROM generate_series(lo, hi - interval '1 hour', interval '1 hour') AS h(t)
         WHERE NOT (tstzrange(h.t, h.t + interval '1 hour') && ANY (gaps))
    ), metrics AS (
        -- Metrics counted in the window, from the first complete hour after their first count.
        SELECT m.metric, f.first_hour
          FROM (SELECT DISTINCT s.metric FROM {{schema}}.series s) m
          CROSS JOIN LATERAL (SELECT min(t.time) AS first_hour FROM {{schema}}.total_hour t WHERE t.metric = m.metric) f
         WHERE EXISTS (SELECT 1 FROM {{schema}}.total_hour t WHERE t.metric = m.metric AND t.time >= lo AND t.time < hi)
    ), counted AS MATERIALIZED (
        SELECT m.*, (SELECT count(*) FROM hours h WHERE h.t > m.first_hour) AS n FROM metrics m
    ), grid AS (
        SELECT m.metric, m.first_hour, m.n, h.t, h.sw, h.sd, h.last6, h.last24, coalesce(v.value, 0) AS v
          FROM counted m
          JOIN hours h ON h.t > m.first_hour
          LEFT JOIN {{schema}}.total_hour v ON v.metric = m.metric AND v.time = h.t AND v.time >= lo AND v.time < hi
    ), kinds AS (
        SELECT g.*,
               CASE WHEN g.n >= 336 THEN 'weekly' WHEN g.n >= 48 THEN 'daily' ELSE 'recent' END AS kind
          FROM grid g
         WHERE g.n >= 3
    ), slotted AS (
        SELECT k.*, CASE k.kind WHEN 'weekly' THEN k.sw WHEN 'daily' THEN k.sd ELSE 0 END AS slot
          FROM kinds k
         WHERE k.kind <> 'recent' OR k.last24
    ), slots AS (
        SELECT s.metric, s.slot, percentile_cont(0.5) WITHIN GROUP (ORDER BY s.v) AS med
          FROM slotted s
         GROUP BY 1, 2
    ), resid AS (
        SELECT s.metric, s.kind, s.n, s.first_hour, s.last6, s.v, m.med
          FROM slotted s JOIN slots m ON m.metric = s.metric AND m.slot = s.slot
    ), spread AS (
        -- The robust coefficient of variation of the hours whose slot expects at least 5.
        SELECT r.metric, percentile_cont(0.5) WITHIN GROUP (ORDER BY r.v / r.med) AS mid,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.med) AS typical
          FROM resid r WHERE r.med >= 5
         GROUP BY 1
    ), mad AS (
        SELECT r.metric, s.typical,
               1.4826 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(r.v / r.med - s.mid)) AS cv
          FROM resid r JOIN spread s USING (metric)
         WHERE r.med >= 5
         GROUP BY 1, 2
    ), per_metric AS (
        SELECT r.metric, min(r.kind) AS kind, min(r.n) AS n, min(r.first_hour) AS first_hour,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY (r.v + 5) / (r.med + 5)) FILTER (WHERE r.last6) AS level,
               count(*) FILTER (WHERE r.last6) AS level_hours,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.v) AS overall
          FROM resid r
         GROUP BY 1
    ), rates AS (
        -- Every slot of each metric, a slot without any complete hour at the metric's median.
        SELECT p.metric, array_agg(greatest(coalesce(sl.med, p.overall), 0.1) / 60 ORDER BY i.slot) AS rates
          FROM per_metric p
          CROSS JOIN LATERAL generate_series(0, CASE p.kind WHEN 'weekly' THEN 167 WHEN 'daily' THEN 23 ELSE 0 END) AS i(slot)
          LEFT JOIN slots sl ON sl.metric = p.metric AND sl.slot = i.slot
         GROUP BY p.metric
    )
    INSERT INTO {{schema}}.anomaly_baselines (metric, baseline, rates, level, dispersion, hours, first_hour, time_zone, through, as_of)
    SELECT p.metric, p.kind, r.rates,
           CASE WHEN p.kind = 'recent' OR p.level_hours < 3 THEN 1 ELSE least(greatest(p.level, 0.5), 2) END,
           greatest(coalesce(power(d.cv, 2) - 1 / d.typical, 0),
                    CASE p.kind WHEN 'weekly' THEN 0.01 WHEN 'daily' THEN 0.04 ELSE 0.1 END),
           p.n, p.first_hour, tz, hi, as_of
      FROM per_metric p
      JOIN rates r USING (metric)
      LEFT JOIN mad d USING (metric);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;
REVOKE EXECUTE ON FUNCTION {{schema}}.refresh_anomaly_baselines(timestamptz) FROM PUBLIC;

-- anomalies_live(since, until, step, metric_name) judges the range now; anomalies() below validates the arguments
-- and reads what the exporter judged already. Both return one row per anomalous complete bucket of each metric's
-- total (see the README), of every judged metric or only of metric_name (the parameter cannot be called metric:
-- that is an output column). Buckets are aligned to 2001-01-01 00:00 UTC like series(). A bucket is judged on its own and as the
-- end of runs of 2, 4, 8, 16, 32 and 64 buckets (summed values against summed expectations): a drop to zero at 5 per
-- bucket is e^-10 over two buckets although a single 0 at 5 is not rare. A bucket is flagged when, for one of
-- these windows,
--   * the window's surprise (count_surprise, nats) is at least 4 ln 10 (score >= 4: tail probability <= 1e-4),
--   * the bucket deviates the same way as the window and at least as much as the window's mean bucket,
--   * for a spike, the window holds at least 10 counts more than expected (low counts stay quiet).
-- score = the largest such surprise / ln 10 (-log10 of the bound on the tail probability); lower and upper are
-- the band of that window at the threshold, scaled to the bucket (expected * bound / window's expected).
CREATE FUNCTION {{schema}}.anomalies_live(
    since  timestamptz,
    until  timestamptz,
    step   interval DEFAULT interval '1 minute',
    metric_name text DEFAULT NULL
) RETURNS TABLE ("time" timestamptz, metric text, value double precision, expected double precision,
                 lower double precision, upper double precision, score double precision, kind text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '32MB'
AS $fn$
#variable_conflict use_column
DECLARE
    origin    constant timestamptz := timestamptz '2001-01-01 00:00:00+00';
    threshold constant double precision := 4 * ln(10);
    lo    timestamptz;
    ext   timestamptz;
    gaps  tstzrange[];
    tbl   text := 'total_minute';
    kept  interval;
BEGIN
    lo := date_bin($3, $1, origin);
    ext := lo - 63 * $3;
    SELECT r.retention INTO kept FROM {{schema}}.resolutions r WHERE r.name = 'minute';
    IF ext < now() - kept THEN
        IF extract(epoch FROM $3)::numeric % 3600 <> 0 THEN
            RAISE EXCEPTION 'anomalies: minutes are kept %; a range starting before that needs a step of whole hours', kept
                  USING ERRCODE = 'invalid_parameter_value', HINT = 'use step interval ''1 hour'' (or a multiple) for older ranges';
        END IF;
        tbl := 'total_hour';
        SELECT r.retention INTO kept FROM {{schema}}.resolutions r WHERE r.name = 'hour';
        IF lo < now() - kept THEN
            -- Nothing is kept there to judge: no anomaly would be a silent, wrong all clear.
            RAISE EXCEPTION 'anomalies: since (%) is older than the data kept: hours are kept %', $1, kept
                  USING ERRCODE = 'invalid_parameter_value',
                        HINT = format('use a since after %s', date_trunc('day', now() - kept) + interval '1 day');
        END IF;
    END IF;
    gaps := ARRAY(SELECT tstzrange(r.since, r.until) FROM {{schema}}.incomplete_ranges(ext, $2) r);
    RETURN QUERY EXECUTE format($q$
    WITH buckets AS (
        -- Every bucket from the runs' lookback on; only complete ones count (see joined).
        SELECT g.t, NOT (tstzrange(g.t, g.t + $4) && ANY ($6)) AS complete
          FROM generate_series($1, $3 - interval '1 microsecond', $4) AS g(t)
         WHERE g.t + $4 <= $3
    ), models AS (
        SELECT a.* FROM {{schema}}.anomaly_baselines a WHERE $5 IS NULL OR a.metric = $5
    ), pieces AS (
        -- Each bucket's parts in UTC hours: their 1-based slots (hour of the week, of the day) in each time zone
        -- the baselines use, and their minutes. A part's slot is that of its UTC hour, as in the refresh (the local
        -- hour in which the UTC hour starts): in zones whose offset is not whole hours the two agree. A bucket of at most an hour inside an hour has one part.
        SELECT z.time_zone, b.t, b.complete,
               array_agg((extract(isodow FROM x.h AT TIME ZONE z.time_zone)::int - 1) * 24
                         + extract(hour FROM x.h AT TIME ZONE z.time_zone)::int + 1) AS sw,
               array_agg(extract(hour FROM x.h AT TIME ZONE z.time_zone)::int + 1) AS sd,
               array_agg(x.mins) AS mins
          FROM (SELECT DISTINCT m.time_zone FROM models m) z
          CROSS JOIN buckets b
          CROSS JOIN LATERAL (
                SELECT p.h,
                       extract(epoch FROM least(p.h + interval '1 hour', b.t + $4) - greatest(p.h, b.t)) / 60 AS mins
                  FROM generate_series(date_bin(interval '1 hour', b.t, timestamptz '2001-01-01 00:00:00+00'),
                                       b.t + $4 - interval '1 microsecond', interval '1 hour') AS p(h)) x
         GROUP BY z.time_zone, b.t, b.complete
    ), expect AS MATERIALIZED (
        -- Materialised: the expectation is computed here, so that the rates arrays (1.3 kB a row) are not carried
        -- into the sorts below (they spilled to disk).
        -- A bucket is judged when it is complete and the metric existed (from its first complete hour on).
        SELECT m.metric, p.t, m.dispersion AS d, p.complete AND p.t >= m.first_hour + interval '1 hour' AS judged,
               m.level * CASE WHEN cardinality(p.mins) = 1
                    THEN m.rates[CASE m.baseline WHEN 'weekly' THEN p.sw[1] WHEN 'daily' THEN p.sd[1] ELSE 1 END] * p.mins[1]
                    ELSE (SELECT sum(m.rates[CASE m.baseline WHEN 'weekly' THEN u.sw WHEN 'daily' THEN u.sd ELSE 1 END] * u.mins)
                            FROM unnest(p.sw, p.sd, p.mins) AS u(sw, sd, mins)) END AS e
          FROM models m JOIN pieces p ON p.time_zone = m.time_zone
    ), vals AS (
        SELECT r.metric, date_bin($4, r.time, timestamptz '2001-01-01 00:00:00+00') AS t, sum(r.value) AS v
          FROM {{schema}}.%1$I r
         WHERE r.time >= $1 AND r.time < $3 AND ($5 IS NULL OR r.metric = $5)
         GROUP BY 1, 2
    ), joined AS (
        -- Buckets not judged weigh nothing in the runs: value and expectation 0.
        SELECT x.metric, x.t, x.judged, x.d,
               CASE WHEN x.judged THEN coalesce(v.v, 0) ELSE 0 END::double precision AS v,
               CASE WHEN x.judged THEN x.e ELSE 0 END AS e
          FROM expect x LEFT JOIN vals v ON v.metric = x.metric AND v.t = x.t
    ), cumulated AS (
        SELECT j.*, sum(j.v) OVER m AS cv, sum(j.e) OVER m AS ce
          FROM joined j
        WINDOW m AS (PARTITION BY j.metric ORDER BY j.t ROWS UNBOUNDED PRECEDING)
    ), windows AS (
        -- The runs of n buckets ending at each bucket: differences of the running sums (one bucket per row).
        SELECT c.*,
               c.cv - lag(c.cv, 2, 0::double precision) OVER m AS v2, c.ce - lag(c.ce, 2, 0::double precision) OVER m AS e2,
               c.cv - lag(c.cv, 4, 0::double precision) OVER m AS v4, c.ce - lag(c.ce, 4, 0::double precision) OVER m AS e4,
               c.cv - lag(c.cv, 8, 0::double precision) OVER m AS v8, c.ce - lag(c.ce, 8, 0::double precision) OVER m AS e8,
               c.cv - lag(c.cv, 16, 0::double precision) OVER m AS v16, c.ce - lag(c.ce, 16, 0::double precision) OVER m AS e16,
               c.cv - lag(c.cv, 32, 0::double precision) OVER m AS v32, c.ce - lag(c.ce, 32, 0::double precision) OVER m AS e32,
               c.cv - lag(c.cv, 64, 0::double precision) OVER m AS v64, c.ce - lag(c.ce, 64, 0::double precision) OVER m AS e64
          FROM cumulated c
        WINDOW m AS (PARTITION BY c.metric ORDER BY c.t)
    ), scored AS (
        -- The largest surprise of the runs ending at the bucket that qualify (run_surprise).
        SELECT w.*,
               greatest(
                   {{schema}}.run_surprise(w.v, w.e, w.v, w.e, 1, w.d, %2$s),
                   {{schema}}.run_surprise(w.v, w.e, w.v2, w.e2, 2, w.d, %2$s),
                   {{schema}}.run_surprise(w.v, w.e, w.v4, w.e4, 4, w.d, %2$s),
                   {{schema}}.run_surprise(w.v, w.e, w.v8, w.e8, 8, w.d, %2$s),
                   {{schema}}.run_surprise(w.v, w.e, w.v16, w.e16, 16, w.d, %2$s),
                   {{schema}}.run_surprise(w.v, w.e, w.v32, w.e32, 32, w.d, %2$s),
                   {{schema}}.run_surprise(w.v, w.e, w.v64, w.e64, 64, w.d, %2$s)) AS s
          FROM windows w
         WHERE w.t >= $2 AND w.judged
    )
    SELECT f.t, f.metric, f.v, f.e,
           f.e * {{schema}}.count_bound(b.ew, f.d, %2$s, false) / b.ew,
           f.e * {{schema}}.count_bound(b.ew, f.d, %2$s, true) / b.ew,
           f.s / ln(10), CASE WHEN f.v < f.e THEN 'drop' ELSE 'spike' END
      FROM scored f
      -- The run that gave the score, for the band.
      CROSS JOIN LATERAL (
            SELECT c.ew FROM (VALUES (1, f.v, f.e), (2, f.v2, f.e2), (4, f.v4, f.e4), (8, f.v8, f.e8), (16, f.v16, f.e16), (32, f.v32, f.e32), (64, f.v64, f.e64)) AS c(n, vw, ew)
             ORDER BY abs({{schema}}.count_surprise(c.vw, c.ew, f.d) - f.s), c.n
             LIMIT 1) b
     WHERE f.s >= %2$s
     ORDER BY f.t, f.metric
    $q$, tbl, threshold)
    USING ext, lo, $2, $3, $4, gaps;
END
$fn$;
REVOKE EXECUTE ON FUNCTION {{schema}}.anomalies_live(timestamptz, timestamptz, interval, text) FROM PUBLIC;

-- The judged minutes: the exporter judges each newly complete minute of every metric once (judge_anomalies, every
-- anomalies::refresh_interval) and keeps the anomalous ones here, for a day; anomalies() per minute reads them
-- instead of judging again (the runs need the 63 minutes before each judged one: judging an hour of 1,000 metrics
-- takes about a second, reading it a few milliseconds). judged_range is what they cover: [since, until), all
-- metrics; a refresh that changes the baselines empties both.
CREATE TABLE {{schema}}.anomaly_judged (
    "time"   timestamptz      NOT NULL,
    metric   text             NOT NULL,
    value    double precision NOT NULL,
    expected double precision NOT NULL,
    lower    double precision NOT NULL,
    upper    double precision NOT NULL,
    score    double precision NOT NULL,
    kind     text             NOT NULL,
    PRIMARY KEY ("time", metric)
);
CREATE TABLE {{schema}}.anomaly_judged_range (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    since timestamptz,
    until timestamptz
);
INSERT INTO {{schema}}.anomaly_judged_range (id) VALUES (true);

-- judge_anomalies(as_of): judges the complete minutes (before the watermark) not judged yet, at most the 2 hours
-- before as_of, stores the anomalous ones, forgets those older than a day, and returns how many it stored.
CREATE FUNCTION {{schema}}.judge_anomalies(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '32MB'
AS $fn$
DECLARE
    origin constant timestamptz := timestamptz '2001-01-01 00:00:00+00';
    r  record;
    lo timestamptz := date_bin(interval '1 minute', as_of - interval '2 hours', origin);
    hi timestamptz := date_bin(interval '1 minute', least({{schema}}.watermark(), as_of), origin);
    n  integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('pgrollup-anomaly-refresh:' || '{{schema}}', 0));
    SELECT j.since, j.until INTO r FROM {{schema}}.anomaly_judged_range j;
    IF r.until IS NOT NULL AND r.until >= lo AND r.until <= hi THEN
        lo := r.until;
    ELSE
        DELETE FROM {{schema}}.anomaly_judged;
        r.since := NULL;
    END IF;
    IF hi <= lo THEN
        RETURN 0;
    END IF;
    INSERT INTO {{schema}}.anomaly_judged ("time", metric, value, expected, lower, upper, score, kind)
    SELECT a.* FROM {{schema}}.anomalies_live(lo, hi, interval '1 minute', NULL) a;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM {{schema}}.anomaly_judged j WHERE j."time" < as_of - interval '1 day';
    UPDATE {{schema}}.anomaly_judged_range
       SET since = greatest(coalesce(r.since, lo), date_bin(interval '1 minute', as_of - interval '1 day', origin)), until = hi;
    RETURN n;
END
$fn$;
REVOKE EXECUTE ON FUNCTION {{schema}}.judge_anomalies(timestamptz) FROM PUBLIC;

-- anomalies(since, until, step, metric_name): see anomalies_live. Per minute, from a since inside the judged range,
-- it reads the judged minutes and judges only those after it (none when the exporter is keeping up); otherwise it
-- judges the whole range.
CREATE FUNCTION {{schema}}.anomalies(
    since  timestamptz,
    until  timestamptz,
    step   interval DEFAULT interval '1 minute',
    metric_name text DEFAULT NULL
) RETURNS TABLE ("time" timestamptz, metric text, value double precision, expected double precision,
                 lower double precision, upper double precision, score double precision, kind text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '32MB'
AS $fn$
#variable_conflict use_column
DECLARE
    origin constant timestamptz := timestamptz '2001-01-01 00:00:00+00';
    r  record;
    lo timestamptz;
BEGIN
    IF $3 IS NULL OR $3 < interval '1 minute' OR $3 > interval '1 day'
       OR extract(epoch FROM $3)::numeric % 60 <> 0 THEN
        RAISE EXCEPTION 'anomalies: step must be whole minutes from 1 minute to 1 day, got %', $3
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'use a step such as interval ''1 minute'', ''5 minutes'' or ''1 hour''';
    END IF;
    IF $1 IS NULL OR $2 IS NULL OR $2 <= $1 THEN
        RAISE EXCEPTION 'anomalies: until (%) must be after since (%)', $2, $1
              USING ERRCODE = 'invalid_parameter_value', HINT = 'pass since < until, for example now() - interval ''1 hour'', now()';
    END IF;
    IF NOT isfinite($1) OR NOT isfinite($2) THEN
        RAISE EXCEPTION 'anomalies: since (%) and until (%) must be finite times', $1, $2
              USING ERRCODE = 'invalid_parameter_value', HINT = 'pass times, for example now() - interval ''1 hour'', now()';
    END IF;
    IF $2 - $1 > interval '31 days' THEN
        RAISE EXCEPTION 'anomalies: the range from since to until is longer than 31 days'
              USING ERRCODE = 'invalid_parameter_value', HINT = 'judge at most 31 days per call';
    END IF;
    IF $4 IS NOT NULL THEN
        -- undefined_object with the closest counted names (migration 006), as series() raises it.
        PERFORM {{schema}}.require_metric('anomalies', $4);
    END IF;
    lo := date_bin($3, $1, origin);
    SELECT j.since, j.until INTO r FROM {{schema}}.anomaly_judged_range j;
    IF $3 = interval '1 minute' AND r.until IS NOT NULL AND lo >= r.since AND lo < r.until THEN
        RETURN QUERY
        SELECT j."time", j.metric, j.value, j.expected, j.lower, j.upper, j.score, j.kind
          FROM {{schema}}.anomaly_judged j
         WHERE j."time" >= lo AND j."time" < r.until AND j."time" + interval '1 minute' <= $2
           AND ($4 IS NULL OR j.metric = $4)
         ORDER BY j."time", j.metric;
        -- The complete minutes after the judged ones (the exporter judges them within its interval).
        IF $2 - r.until >= interval '1 minute' AND {{schema}}.watermark() - r.until >= interval '1 minute' THEN
            RETURN QUERY SELECT * FROM {{schema}}.anomalies_live(r.until, $2, $3, $4);
        END IF;
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM {{schema}}.anomalies_live($1, $2, $3, $4);
END
$fn$;
REVOKE EXECUTE ON FUNCTION {{schema}}.anomalies(timestamptz, timestamptz, interval, text) FROM PUBLIC;

-- anomalies_now: the metrics whose latest complete minute is anomalous, with the start of the run of anomalous
-- minutes of the same kind it ends (within the last hour) and the baseline that judged it.
CREATE VIEW {{schema}}.anomalies_now AS
WITH latest AS (
    SELECT max(g.t) AS t
      FROM generate_series(date_bin(interval '1 minute', now() - interval '1 hour', timestamptz '2001-01-01 00:00:00+00'),
                           now() - interval '1 minute', interval '1 minute') AS g(t)
     WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.incomplete_ranges(now() - interval '1 hour', now()) r
                        WHERE tstzrange(g.t, g.t + interval '1 minute') && tstzrange(r.since, r.until))
), a AS (
    SELECT a.*, a.time - (row_number() OVER (PARTITION BY a.metric, a.kind ORDER BY a.time)) * interval '1 minute' AS island
      FROM {{schema}}.anomalies(now() - interval '1 hour', now(), interval '1 minute') a
), runs AS (
    SELECT a.metric, a.kind, a.island, min(a.time) AS started, max(a.time) AS last
      FROM a GROUP BY 1, 2, 3
)
SELECT a.time, a.metric, a.value, a.expected, a.lower, a.upper, a.score, a.kind,
       r.started, b.baseline
  FROM a
  JOIN latest l ON a.time = l.t
  JOIN runs r ON r.metric = a.metric AND r.kind = a.kind AND r.island = a.island
  LEFT JOIN {{schema}}.anomaly_baselines b ON b.metric = a.metric;

-- Roles that could already write the rollups (a collector with migrate_on_start: false) may refresh the baselines;
-- roles that could read series() may read the anomalies. (trackctl grants gives the same to new roles.)
DO $grants$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee::regrole::text AS role
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = '{{schema}}.rollup_minute'::regclass AND a.privilege_type = 'INSERT'
                AND a.grantee <> 0 AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT SELECT, UPDATE ON {{schema}}.anomaly_settings TO %s', g.role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION {{schema}}.refresh_anomaly_baselines(timestamptz), {{schema}}.judge_anomalies(timestamptz) TO %s', g.role);
    END LOOP;
    FOR g IN SELECT DISTINCT a.grantee::regrole::text AS role
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.pronamespace = '{{schema}}'::regnamespace AND p.proname = 'series'
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION {{schema}}.anomalies(timestamptz, timestamptz, interval, text) TO %s', g.role);
        EXECUTE format('GRANT SELECT ON {{schema}}.anomalies_now TO %s', g.role);
    END LOOP;
END
$grants$;
