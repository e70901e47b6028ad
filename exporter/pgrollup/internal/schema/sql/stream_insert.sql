INSERT INTO {{.Schema}}.cumulative_streams (key, series_id, start_unix_nano, last_unix_nano, last_value, seen_at)
SELECT k, i, s, l, v, $6 FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::float8[]) AS u(k, i, s, l, v) ORDER BY k
