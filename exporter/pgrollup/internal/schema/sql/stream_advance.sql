-- u: key, series, p1's start and time, the final state. The CASE condition: p1 is later than the
-- stored state and not of an earlier run. SET expressions read the row as it was (after a wait, as
-- the other collector committed it); RETURNING reads it as written.
UPDATE {{.Schema}}.cumulative_streams AS c SET
    prev_start_unix_nano = c.start_unix_nano, prev_last_unix_nano = c.last_unix_nano, prev_value = c.last_value,
    series_id = u.i,
    start_unix_nano = CASE WHEN c.last_unix_nano < u.t1 AND c.start_unix_nano <= u.s1 THEN u.s ELSE c.start_unix_nano END,
    last_unix_nano = CASE WHEN c.last_unix_nano < u.t1 AND c.start_unix_nano <= u.s1 THEN u.l ELSE c.last_unix_nano END,
    last_value = CASE WHEN c.last_unix_nano < u.t1 AND c.start_unix_nano <= u.s1 THEN u.v ELSE c.last_value END,
    seen_at = $8
FROM (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::float8[])
      AS u(k, i, s1, t1, s, l, v) ORDER BY k) AS u
WHERE c.key = u.k
RETURNING c.key, c.prev_start_unix_nano, c.prev_last_unix_nano, c.prev_value, c.last_unix_nano
