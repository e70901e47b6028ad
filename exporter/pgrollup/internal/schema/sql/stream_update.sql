UPDATE {{.Schema}}.cumulative_streams AS c SET series_id = u.i, start_unix_nano = u.s, last_unix_nano = u.l, last_value = u.v, seen_at = $6
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::float8[]) AS u(k, i, s, l, v) WHERE c.key = u.k
