-- Sources seen ($1 services, $2 instances, $3 times), sorted so that concurrent collectors wait on
-- each other instead of deadlocking.
INSERT INTO {{.Schema}}.source_seen AS s (service, instance, first_seen, last_seen)
SELECT v, i, t, t FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(v, i, t) ORDER BY v, i
ON CONFLICT (service, instance) DO UPDATE
SET first_seen = least(s.first_seen, excluded.first_seen), last_seen = greatest(s.last_seen, excluded.last_seen)
