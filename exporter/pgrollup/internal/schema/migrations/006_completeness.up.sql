-- 006: completeness. The exporter records when each collector flushed (as spans of its flush history) and
-- which sources (service.name, service.instance.id) reported when; from them {{schema}}.watermark() and
-- {{schema}}.incomplete_ranges() say which time ranges may still receive counts. Views {{schema}}.sources and
-- {{schema}}.ingestion show them to analysts.
--
-- {{schema}} is replaced by the configured schema (default track) before the file runs.

-- One row per span of a collector's flush history: the collector (its own service.instance.id) flushed, or wrote
-- its liveness on its timer when there was nothing to flush, at least every `gap` from since to until. A flush
-- later than `gap` after until starts a new span. lateness is the senders' export interval the collector assumes:
-- a point stamped t reaches the collector by t + lateness, so the counts of a span's collector are complete in
-- [since, until - lateness]. Both are the collector's settings (completeness::lateness, completeness::stale_after),
-- recorded with each write.
CREATE TABLE {{schema}}.collector_spans (
    collector text        NOT NULL,
    since     timestamptz NOT NULL,
    until     timestamptz NOT NULL,
    lateness  interval    NOT NULL,
    gap       interval    NOT NULL,
    PRIMARY KEY (collector, since)
) WITH (fillfactor = 50);
CREATE INDEX collector_spans_until_idx ON {{schema}}.collector_spans (until);

-- History before liveness was recorded is assumed complete: one span, of no collector, up to this migration. It
-- starts at -infinity rather than at the oldest stored rollup: nothing is stored before now minus the longest
-- retention, series() refuses ranges that start there, and finding the oldest row would scan the rollup tables.
INSERT INTO {{schema}}.collector_spans (collector, since, until, lateness, gap)
VALUES ('', '-infinity', now(), interval '0', interval '0');

-- One row per source: the resource (service.name, service.instance.id; '' where the attribute is missing) of
-- pushed requests, also those without data points and those of a track heartbeat (a track process that counts
-- nothing sends its resource with one track.heartbeat point of 0 every interval). The exporter writes last_seen
-- again when it moved by more than completeness::source_resolution.
CREATE TABLE {{schema}}.source_seen (
    service    text        NOT NULL,
    instance   text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (service, instance)
) WITH (fillfactor = 70);

CREATE VIEW {{schema}}.sources AS
SELECT service, instance, first_seen, last_seen FROM {{schema}}.source_seen;

-- {{schema}}.watermark(): the time up to which every collector that flushed recently (within its own gap) has
-- received the counts, that is the least of their last flush less their lateness. With no collector flushing
-- recently (the pipeline is down), the greatest such time over the whole history.
-- (PL/pgSQL rather than SQL: its plan is cached for the session, where a SQL function's is made per call.)
CREATE FUNCTION {{schema}}.watermark() RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN coalesce(
        (SELECT min(s.until - s.lateness) FROM {{schema}}.collector_spans s WHERE s.until >= now() - s.gap),
        (SELECT max(s.until - s.lateness) FROM {{schema}}.collector_spans s));
END
$fn$;

-- {{schema}}.incomplete_ranges(since, until): the ranges inside [since, until) whose counts may still arrive,
-- in time order: 'gap' where no collector's complete range [span since, span until - lateness] covers the time
-- (no collector flushed: counts sent then may be lost or come late from a sender's backlog), up to the
-- watermark; then 'watermark' for [watermark, until) (the current bucket lies there too). A bucket [t, t+step)
-- is complete iff it overlaps none of them. One walk over the spans that overlap the range.
-- Its arguments are positional (unnamed): an input parameter may not share the name of an output column.
CREATE FUNCTION {{schema}}.incomplete_ranges(timestamptz, timestamptz)
RETURNS TABLE (since timestamptz, until timestamptz, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    -- watermark()'s query, inlined: one function call less per series().
    w   timestamptz := coalesce(
            (SELECT min(s.until - s.lateness) FROM {{schema}}.collector_spans s WHERE s.until >= now() - s.gap),
            (SELECT max(s.until - s.lateness) FROM {{schema}}.collector_spans s));
    hi  timestamptz;
    cur timestamptz := $1;
    r   record;
BEGIN
    IF $1 IS NULL OR $2 IS NULL OR $2 <= $1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('incomplete_ranges: until (%s) must be after since (%s)', $2, $1),
            HINT = 'pass a non-empty range, for example (now() - interval ''1 day'', now())';
    END IF;
    hi := least($2, w);
    IF cur < hi THEN
        FOR r IN SELECT s.since AS lo, s.until - s.lateness AS up
                   FROM {{schema}}.collector_spans s
                  WHERE s.until > $1 AND s.since < hi AND s.until - s.lateness > s.since
                    AND s.until - s.lateness > $1
                  ORDER BY s.since
        LOOP
            IF r.lo > cur THEN
                since := cur; until := least(r.lo, hi); reason := 'gap';
                RETURN NEXT;
            END IF;
            cur := greatest(cur, r.up);
            EXIT WHEN cur >= hi;
        END LOOP;
        IF cur < hi THEN
            since := cur; until := hi; reason := 'gap';
            RETURN NEXT;
        END IF;
    END IF;
    IF w < $2 THEN
        since := greatest(w, $1); until := $2; reason := 'watermark';
        RETURN NEXT;
    END IF;
END
$fn$;

-- {{schema}}.ingestion: the pipeline's health in one view, one row per
--   kind 'collector': each collector's latest span (since: it started flushing, until: its last flush),
--                     live when it flushed within its gap;
--   kind 'gap':       each time range no collector covered (from the end of the seeded history, or the first
--                     stored span, up to the watermark);
--   kind 'watermark': since = watermark(), until = now(); live when some collector is live.
CREATE VIEW {{schema}}.ingestion AS
SELECT 'collector'::text AS kind, c.collector, c.since, c.until, c.lateness, c.until >= now() - c.gap AS live
  FROM (SELECT DISTINCT ON (s.collector) s.*
          FROM {{schema}}.collector_spans s
         WHERE s.collector <> ''
         ORDER BY s.collector, s.since DESC) c
UNION ALL
SELECT 'gap', NULL, g.since, g.until, NULL, false
  FROM {{schema}}.incomplete_ranges(
           least((SELECT min(CASE WHEN s.since = '-infinity' THEN s.until ELSE s.since END) FROM {{schema}}.collector_spans s),
                 now() - interval '1 microsecond'),
           now()) g
 WHERE g.reason = 'gap'
UNION ALL
SELECT 'watermark', NULL, w.w, now(), NULL,
       EXISTS (SELECT FROM {{schema}}.collector_spans s WHERE s.collector <> '' AND s.until >= now() - s.gap)
  FROM (SELECT {{schema}}.watermark() AS w) w;

-- {{schema}}.metrics: the metrics counted so far and how many series each has (series() suggests from them).
CREATE VIEW {{schema}}.metrics AS
SELECT s.metric, count(*) AS series FROM {{schema}}.series s GROUP BY s.metric;

-- {{schema}}.edit_distance(a, b): the Levenshtein distance of two names (insertions, deletions and substitutions
-- of one character each cost 1; Levenshtein 1966), for the suggestions of require_metric. No extension needed.
CREATE FUNCTION {{schema}}.edit_distance(a text, b text) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    la   int := length(a);
    lb   int := length(b);
    prev int[];
    cur  int[];
BEGIN
    IF la = 0 THEN RETURN lb; END IF;
    IF lb = 0 THEN RETURN la; END IF;
    prev := ARRAY(SELECT generate_series(0, lb));
    FOR i IN 1..la LOOP
        cur := ARRAY[i];
        FOR j IN 1..lb LOOP
            cur := cur || least(prev[j + 1] + 1, cur[j] + 1,
                                prev[j] + CASE WHEN substr(a, i, 1) = substr(b, j, 1) THEN 0 ELSE 1 END);
        END LOOP;
        prev := cur;
    END LOOP;
    RETURN prev[lb + 1];
END
$fn$;

-- {{schema}}.require_metric(caller, metric): raises undefined_object (42704) unless some series of metric has been
-- counted, with a HINT naming the closest counted names (edit distance at most a third of the name's length and at
-- least 2, or one name containing the other; case ignored), or how to list them. series() calls it; so may other
-- functions (caller names the function in the message).
CREATE FUNCTION {{schema}}.require_metric(caller text, metric text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    near text[];
BEGIN
    IF $2 IS NOT NULL AND EXISTS (SELECT FROM {{schema}}.series s WHERE s.metric = $2) THEN
        RETURN;
    END IF;
    IF $2 IS NOT NULL AND $2 <> '' THEN
        SELECT array_agg(format('"%s"', c.metric) ORDER BY c.d, c.metric) INTO near
          FROM (SELECT m.metric, {{schema}}.edit_distance(lower(m.metric), lower($2)) AS d
                  FROM (SELECT DISTINCT s.metric FROM {{schema}}.series s
                         WHERE abs(length(s.metric) - length($2)) <= greatest(2, length($2) / 3)
                            OR strpos(lower(s.metric), lower($2)) > 0 OR strpos(lower($2), lower(s.metric)) > 0
                         LIMIT 5000) m) c
         WHERE c.d <= greatest(2, length($2) / 3)
            OR strpos(lower(c.metric), lower($2)) > 0 OR strpos(lower($2), lower(c.metric)) > 0;
    END IF;
    IF near IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('%s: no metric named "%s" has been counted', $1, $2),
            HINT = format('did you mean %s?', array_to_string(near[1:3], ', '));
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'undefined_object',
        MESSAGE = format('%s: no metric named "%s" has been counted', $1, coalesce($2, 'NULL')),
        HINT = 'no counted metric has a similar name; list them with SELECT metric FROM {{schema}}.metrics ORDER BY 1';
END
$fn$;

-- {{schema}}.series(metric, since, until, step, filter, tz): one row per step from the step holding since up to
-- until (exclusive): the sum over the series of metric whose attributes plus {"service": service} contain filter,
-- 0 where nothing was counted, and complete: false where counts may still arrive. 4- and 5-argument calls are those
-- of 001 and 003; the grants of their function carry over (below).
--
-- Steps. A step shorter than a day is a fixed length, aligned to 2001-01-01 00:00 local time in tz (a Monday; in
-- 'UTC', the alignment of 001). A step of a day or longer is calendar time in tz: N days ('1 day', '7 days',
-- '1 week', '24 hours') start at local midnight, a day holds exactly that local day (23 or 25 hours across a DST
-- change), and N-day steps are aligned to 2001-01-01 (so weeks start on a local Monday); N months ('1 month',
-- '3 months', '1 year') start on the 1st at local midnight, aligned to January 2001.
--
-- The resolution read is the finest whose retention holds the first bucket (as in 001). Its buckets must fall
-- whole into the steps: its width must divide a fixed step, and the bucket boundaries (local midnights, and the
-- origin of fixed steps) must lie on multiples of its width, which holds for day rollups only where tz's offset is
-- 0, for hour rollups where it is whole hours, for minutes at +05:30 and +05:45. Otherwise it raises an error.
--
-- complete is false for a bucket that overlaps a range of incomplete_ranges (past the watermark, the current
-- bucket, or a gap when no collector flushed) or that ends after until (its counts after until are not read).
--
-- Errors, always with a HINT saying what to do instead: undefined_object (42704) for a metric never counted
-- (require_metric); invalid_parameter_value (22023) for a range that is empty or older than every retention, a
-- filter that is not a JSON object (NULL included), a
-- step that is not positive, mixes months with days or time, is a day or longer but not whole days, is finer than
-- the data kept for the range or not a multiple of it, an unknown time zone, or a time zone whose offsets the data
-- kept for the range cannot follow.
--
-- The plan choices of 003 hold (generic plans; totals without a filter; ids, then an index-only scan, with one).
-- Fixed steps group by date_bin as 003 did; calendar steps compute the bucket boundaries once and sum each bucket
-- with its own index range scan (per local day over 90 days: 90 scans of 24 hour rows, as fast as 003's one scan
-- grouped by date_bin, where finding each row's bucket by a binary search over the boundaries cost 40% more).
CREATE FUNCTION {{schema}}.series(
    metric text,
    since  timestamptz,
    until  timestamptz,
    step   interval,
    filter jsonb DEFAULT '{}',
    tz     text  DEFAULT 'UTC'
) RETURNS TABLE ("time" timestamptz, value double precision, complete boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
    origin  timestamptz;
    lo      timestamptz;
    hi      timestamptz;
    res     text;
    rwidth  interval;
    width_s bigint;
    ids     bigint[];
    aligned boolean;
    months  int;
    days    int;
    secs    numeric;
    cal     boolean := false;
    stp     interval;
    llo     timestamp;
    bs      timestamptz[];
    be      timestamptz[];
    gs      timestamptz[];
    ge      timestamptz[];
    gaps    int;
    ir      record;
    g1s     timestamptz;
    g1u     timestamptz;
    cut     timestamptz;
    fname   text;
    fkeep   interval;
    ok      boolean;
BEGIN
    IF $2 IS NULL OR $3 IS NULL OR $3 <= $2 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: until (%s) must be after since (%s)', coalesce($3::text, '<NULL>'), coalesce($2::text, '<NULL>')),
            HINT = 'pass a non-empty range, for example since now() - interval ''6 hours'' and until now()';
    END IF;
    IF NOT isfinite($2) OR NOT isfinite($3) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: since (%s) and until (%s) must be finite times', $2, $3),
            HINT = 'pass times, for example since now() - interval ''6 hours'' and until now()';
    END IF;
    IF $4 IS NULL OR $4 <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: step must be a positive interval, got %s', coalesce($4::text, '<NULL>')),
            HINT = 'use for example interval ''1 minute'', ''1 hour'', ''1 day'', ''1 week'' or ''1 month''';
    END IF;
    IF $5 IS NULL OR jsonb_typeof($5) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: filter must be a JSON object, got %s', coalesce($5::text, '<NULL>')),
            HINT = 'pass ''{}'' for every series of the metric, or attributes to match such as ''{"service": "checkout", "country": "DE"}''';
    END IF;
    IF $6 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'series: tz must be a time zone name, got NULL',
            HINT = 'use an IANA name such as ''Europe/Berlin'' (SELECT name FROM pg_timezone_names lists them), or ''UTC''';
    END IF;
    IF $6 ~ '^\s*[+-]?[0-9]' THEN
        -- Postgres reads a bare offset as POSIX, west of UTC: '+05:30' would be 05:30 behind UTC, not India.
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: tz: "%s" is a bare UTC offset, which Postgres reads as POSIX (hours west of UTC, the opposite of ISO 8601)', $6),
            HINT = 'use an IANA name such as ''Asia/Kolkata'' (+05:30) or ''America/New_York'' (SELECT name, utc_offset FROM pg_timezone_names lists them), or ''UTC''';
    END IF;
    IF $6 <> 'UTC' THEN
        BEGIN
            PERFORM now() AT TIME ZONE $6;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('series: tz: time zone "%s" is not recognized', $6),
                HINT = 'use an IANA name such as ''Europe/Berlin'' or ''America/New_York'' (SELECT name FROM pg_timezone_names lists them), or ''UTC''';
        END;
    END IF;
    months := (extract(year FROM $4) * 12 + extract(month FROM $4))::int;
    days := extract(day FROM $4)::int;
    secs := extract(epoch FROM $4 - make_interval(months => months, days => days));
    IF months < 0 OR days < 0 OR secs < 0 OR (months > 0 AND (days > 0 OR secs > 0)) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: step %s mixes months with days or time, or has a negative part', $4),
            HINT = 'use whole months (interval ''1 month'', ''3 months'', ''1 year''), whole days (''1 day'', ''1 week''), or a step shorter than a day (''1 minute'', ''1 hour'')';
    END IF;
    -- At most 1,000,000 steps (a fixed step over a far-future until would otherwise build millions of rows, all
    -- incomplete). The shortest length each part can have (28-day months, 23-hour days) bounds the count from above.
    IF extract(epoch FROM $3 - $2) / (months * 28 * 86400 + days * 23 * 3600 + secs) > 1000000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: step %s over the range from %s to %s makes more than 1,000,000 steps', $4, $2, $3),
            HINT = format('use a step of at least %s, or a shorter range',
                          justify_interval(make_interval(secs => ceil(extract(epoch FROM $3 - $2) / 1000000)))::text);
    END IF;
    IF months > 0 THEN
        cal := true;
        stp := make_interval(months => months);
        llo := timestamp '2001-01-01' + make_interval(months => (floor(
                   ((extract(year FROM $2 AT TIME ZONE $6) - 2001) * 12 + extract(month FROM $2 AT TIME ZONE $6) - 1)
                   / months) * months)::int);
    ELSIF days * 86400 + secs >= 86400 THEN
        IF (days * 86400 + secs) % 86400 <> 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('series: step %s is a day or longer but not a whole number of days', $4),
                HINT = 'steps of a day or longer are calendar days in tz: use interval ''1 day'', ''2 days'' or ''1 week'', or a step shorter than a day';
        END IF;
        cal := true;
        stp := make_interval(days => ((days * 86400 + secs) / 86400)::int);
        llo := date_bin(stp, $2 AT TIME ZONE $6, timestamp '2001-01-01');
    END IF;

    IF cal THEN
        SELECT array_agg(g AT TIME ZONE $6 ORDER BY g), array_agg((g + stp) AT TIME ZONE $6 ORDER BY g) INTO bs, be
          FROM generate_series(llo, $3 AT TIME ZONE $6, stp) AS g
         WHERE g AT TIME ZONE $6 < $3;
        lo := bs[1];
        hi := be[cardinality(be)];
    ELSE
        origin := timestamp '2001-01-01' AT TIME ZONE $6;
        lo := date_bin($4, $2, origin);
        hi := date_bin($4, $3 - interval '1 microsecond', origin) + $4;
    END IF;

    SELECT r.name, r.width INTO res, rwidth
      FROM {{schema}}.resolutions r
     WHERE lo >= now() - r.retention
     ORDER BY r.width
     LIMIT 1;
    IF res IS NULL THEN
        SELECT r.name, r.retention INTO fname, fkeep FROM {{schema}}.resolutions r ORDER BY r.retention DESC, r.width LIMIT 1;
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: since (%s) is older than the data kept: %s rollups, the longest kept, are kept %s', lo, fname, fkeep),
            HINT = format('use a since after %s', date_trunc('minute', now() - fkeep) + interval '1 minute');
    END IF;
    width_s := extract(epoch FROM rwidth)::bigint;
    IF NOT cal THEN
        IF secs < width_s THEN
            -- The finer resolution: what a shorter range could read.
            SELECT r.name, r.retention INTO fname, fkeep FROM {{schema}}.resolutions r WHERE r.width < rwidth ORDER BY r.width DESC LIMIT 1;
            IF fname IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = format('series: step %s is finer than the finest data kept, 1 %s', $4, res),
                    HINT = format('use a step of 1 %s or a multiple of it', res);
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('series: step %s is finer than the data kept for this range: %ss are kept %s; for a range from %s days ago use a step of 1 %s or more',
                                 $4, fname, fkeep, round(extract(epoch FROM now() - lo) / 86400), res),
                HINT = format('use a step of 1 %s or a multiple of it, or a since within the last %s', res, fkeep);
        END IF;
        IF secs % width_s <> 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('series: step %s is not a whole number of %ss, the data kept for this range', $4, res),
                HINT = format('use a multiple of 1 %s, for example 1 %s or 2 %ss', res, res, res);
        END IF;
        ok := extract(epoch FROM origin)::bigint % width_s = 0;
    ELSE
        ok := NOT EXISTS (SELECT FROM unnest(bs || hi) b WHERE extract(epoch FROM b)::bigint % width_s <> 0);
    END IF;
    IF NOT ok THEN
        -- The coarsest finer resolution whose buckets the steps could follow.
        SELECT r.name, r.retention INTO fname, fkeep
          FROM {{schema}}.resolutions r
         WHERE r.width < rwidth
           AND CASE WHEN cal THEN NOT EXISTS (SELECT FROM unnest(bs || hi) b
                                               WHERE extract(epoch FROM b)::bigint % extract(epoch FROM r.width)::bigint <> 0)
                    ELSE extract(epoch FROM origin)::bigint % extract(epoch FROM r.width)::bigint = 0 END
         ORDER BY r.width DESC
         LIMIT 1;
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('series: steps in time zone %s do not start on whole %ss over this range (its UTC offset is not a multiple of 1 %s), and %s rollups are the finest kept for a range from %s days ago',
                             $6, res, res, res, round(extract(epoch FROM now() - lo) / 86400)),
            HINT = CASE WHEN fname IS NULL THEN 'use tz ''UTC'''
                        ELSE format('use a since within the last %s (where %s rollups are kept), or tz ''UTC''', fkeep, fname) END;
    END IF;

    IF NOT EXISTS (SELECT FROM {{schema}}.series s WHERE s.metric = $1) THEN
        PERFORM {{schema}}.require_metric('series', $1);
    END IF;
    IF $5 <> '{}'::jsonb THEN
        ids := ARRAY(SELECT s.id FROM {{schema}}.series s
                      WHERE s.metric = $1
                        AND (s.attributes || jsonb_build_object('service', s.service)) @> $5);
        -- A filter no series ever matched (a typo in a key or value) must not read as zeros: a dead service
        -- has series that stopped counting, a mistyped filter has none.
        IF cardinality(ids) = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('series: filter %s matches no series of metric %s', $5::text, quote_literal($1)),
                HINT = format('its series have the keys %s (service is the service.name); a filter matches when every key it names has exactly that value',
                              (SELECT string_agg(k, ', ' ORDER BY k)
                                 FROM (SELECT DISTINCT jsonb_object_keys(s.attributes || jsonb_build_object('service', s.service)) AS k
                                         FROM {{schema}}.series s WHERE s.metric = $1) keys));
        END IF;
    END IF;

    -- Completeness: the incomplete ranges once (sorted, disjoint); a bucket must end by until and by the start of
    -- the watermark's range (cut), and overlap no gap: with no gap that is all, with one two comparisons (scalars:
    -- an array variable is copied for each row that reads it), else the last gap starting before the bucket's end
    -- (found by width_bucket, a binary search) must end by its start.
    cut := $3;
    gaps := 0;
    FOR ir IN SELECT * FROM {{schema}}.incomplete_ranges(lo, greatest(hi, $3)) LOOP
        IF ir.reason = 'watermark' THEN
            cut := least($3, ir.since);
        ELSE
            gaps := gaps + 1;
            gs[gaps] := ir.since;
            ge[gaps] := ir.until;
        END IF;
    END LOOP;
    g1s := gs[1];
    g1u := ge[1];
    aligned := $4 = rwidth;

{{range $i, $r := list "minute" "hour" "day"}}    {{if $i}}ELSIF{{else}}IF{{end}} res = '{{$r}}' THEN
        IF NOT cal AND ids IS NULL THEN
            -- Every series of the metric: its totals (one row per bucket instead of one per series).
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision,
                   g.t + $4 <= cut AND (gaps = 0 OR (gaps = 1 AND (g.t >= g1u OR g.t + $4 <= g1s))
                                        OR (gaps > 1 AND coalesce(ge[width_bucket(g.t + $4 - interval '1 microsecond', gs)] <= g.t, true)))
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                           FROM {{schema}}.total_{{$r}} r
                          WHERE r.metric = $1 AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSIF NOT cal THEN
            RETURN QUERY
            SELECT g.t, coalesce(a.v, 0)::double precision,
                   g.t + $4 <= cut AND (gaps = 0 OR (gaps = 1 AND (g.t >= g1u OR g.t + $4 <= g1s))
                                        OR (gaps > 1 AND coalesce(ge[width_bucket(g.t + $4 - interval '1 microsecond', gs)] <= g.t, true)))
              FROM generate_series(lo, $3 - interval '1 microsecond', $4) AS g(t)
              LEFT JOIN (SELECT CASE WHEN aligned THEN r.time ELSE date_bin($4, r.time, origin) END AS t, sum(r.value) AS v
                           FROM {{schema}}.rollup_{{$r}} r
                          WHERE r.series_id = ANY(ids) AND r.time >= lo AND r.time < $3
                          GROUP BY 1) a ON a.t = g.t
             ORDER BY g.t;
        ELSIF ids IS NULL THEN
            RETURN QUERY
            SELECT b.t, coalesce(a.v, 0)::double precision,
                   b.e <= cut AND (gaps = 0 OR (gaps = 1 AND (b.t >= g1u OR b.e <= g1s))
                                   OR (gaps > 1 AND coalesce(ge[width_bucket(b.e - interval '1 microsecond', gs)] <= b.t, true)))
              FROM unnest(bs, be) AS b(t, e)
              LEFT JOIN LATERAL (SELECT sum(r.value) AS v
                                   FROM {{schema}}.total_{{$r}} r
                                  WHERE r.metric = $1 AND r.time >= b.t AND r.time < least(b.e, $3)) a ON true
             ORDER BY b.t;
        ELSE
            RETURN QUERY
            SELECT b.t, coalesce(a.v, 0)::double precision,
                   b.e <= cut AND (gaps = 0 OR (gaps = 1 AND (b.t >= g1u OR b.e <= g1s))
                                   OR (gaps > 1 AND coalesce(ge[width_bucket(b.e - interval '1 microsecond', gs)] <= b.t, true)))
              FROM unnest(bs, be) AS b(t, e)
              LEFT JOIN LATERAL (SELECT sum(r.value) AS v
                                   FROM {{schema}}.rollup_{{$r}} r
                                  WHERE r.series_id = ANY(ids) AND r.time >= b.t AND r.time < least(b.e, $3)) a ON true
             ORDER BY b.t;
        END IF;
{{end}}    END IF;
END
$fn$;

REVOKE EXECUTE ON FUNCTION {{schema}}.watermark(), {{schema}}.incomplete_ranges(timestamptz, timestamptz),
    {{schema}}.series(text, timestamptz, timestamptz, interval, jsonb, text), {{schema}}.require_metric(text, text),
    {{schema}}.edit_distance(text, text) FROM PUBLIC;

-- Roles that could already write the rollups (a collector with migrate_on_start: false) may write the liveness
-- records; roles that could call series() may call the new one and read what is complete and which metrics exist.
-- (trackctl grant gives the same to new roles.) Then the old series() goes: a 4- or 5-argument call would
-- otherwise match both.
DO $grants$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee::regrole::text AS role
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = '{{schema}}.rollup_minute'::regclass AND a.privilege_type = 'INSERT'
                AND a.grantee <> 0 AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON {{schema}}.collector_spans, {{schema}}.source_seen TO %s', g.role);
    END LOOP;
    FOR g IN SELECT DISTINCT a.grantee::regrole::text AS role
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = '{{schema}}.series(text, timestamptz, timestamptz, interval, jsonb)'::regprocedure
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION {{schema}}.watermark(), {{schema}}.incomplete_ranges(timestamptz, timestamptz) TO %s', g.role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION {{schema}}.series(text, timestamptz, timestamptz, interval, jsonb, text) TO %s', g.role);
        EXECUTE format('GRANT SELECT ON {{schema}}.sources, {{schema}}.ingestion, {{schema}}.metrics TO %s', g.role);
    END LOOP;
END
$grants$;

DROP FUNCTION {{schema}}.series(text, timestamptz, timestamptz, interval, jsonb);
