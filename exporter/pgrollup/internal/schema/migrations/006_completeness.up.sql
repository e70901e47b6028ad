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

-- History before liveness was recorded is assumed complete: one span, of no collector, up to this migration.
INSERT INTO {{schema}}.collector_spans (collector, since, until, lateness, gap)
VALUES ('', '-infinity', now(), interval '0', interval '0');

-- One row per source: the resource (service.name, service.instance.id; '' where the attribute is missing) of
-- pushed requests, also those without data points (a track process that counts nothing sends its resource
-- alone every interval). The exporter writes last_seen when it moved by more than completeness::source_resolution.
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
CREATE FUNCTION {{schema}}.watermark() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT coalesce(
    (SELECT min(s.until - s.lateness) FROM {{schema}}.collector_spans s WHERE s.until >= now() - s.gap),
    (SELECT max(s.until - s.lateness) FROM {{schema}}.collector_spans s))
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
    w   timestamptz := {{schema}}.watermark();
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
--   kind 'gap':       each time range no collector covered (from the stored history up to the watermark);
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
           least((SELECT min(s.since) FROM {{schema}}.collector_spans s WHERE s.since > '-infinity'),
                 now() - interval '1 microsecond'),
           now()) g
 WHERE g.reason = 'gap'
UNION ALL
SELECT 'watermark', NULL, w.w, now(), NULL,
       EXISTS (SELECT FROM {{schema}}.collector_spans s WHERE s.collector <> '' AND s.until >= now() - s.gap)
  FROM (SELECT {{schema}}.watermark() AS w) w;

REVOKE EXECUTE ON FUNCTION {{schema}}.watermark(), {{schema}}.incomplete_ranges(timestamptz, timestamptz) FROM PUBLIC;

-- Roles that could already write the rollups (a collector with migrate_on_start: false) may write the liveness
-- records; roles that could read series() may read what is complete. (trackctl grant gives the same to new roles.)
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
        EXECUTE format('GRANT SELECT ON {{schema}}.sources, {{schema}}.ingestion TO %s', g.role);
    END LOOP;
END
$grants$;
