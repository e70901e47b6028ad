package main

// The SQL the demo shows, each with its result: what an analyst would type into psql.
const (
	analystQuery = `-- Fraudulent cards per hour and reason over the last day, with the worst minute of each.
SELECT date_trunc('hour', time) AS hour,
       attributes->>'reason'    AS reason,
       sum(value)::bigint       AS fraudulent_cards,
       max(value)::bigint       AS worst_minute
  FROM track.minutely
 WHERE metric = 'fraudulent-card' AND time > now() - interval '1 day'
 GROUP BY 1, 2
 ORDER BY 1, 3 DESC;`

	funnelQuery = `-- Where do users drop out of the sign-up form? (track.funnel: users reaching each step in order
-- within 30 minutes of starting, conversion from the previous step, median time from it)
SELECT step, name,
       round(users)::bigint                                  AS users,
       coalesce(round(100 * conversion)::text || ' %', '')   AS "from previous",
       coalesce(round(extract(epoch FROM median_time), 1) || ' s', '') AS "median time from previous"
  FROM track.funnel(ARRAY['signup_start','signup_profile','signup_payment','signup_complete'],
                    now() - interval '1 hour', now(), interval '30 minutes');`

	errorsQuery = `-- The most frequent errors (track.event_errors), with the top of the latest stack trace.
-- Emails and card numbers were redacted by the collector before anything was stored.
SELECT left(message, 70)                                   AS message,
       count::bigint                                       AS errors,
       to_char(last_seen, 'HH24:MI:SS')                    AS last_seen,
       replace(array_to_string((string_to_array(sample_stacktrace, E'\n'))[1:2], ' '), E'\t', '') AS "latest stack (top frame)"
  FROM track.event_errors
 ORDER BY count DESC
 LIMIT 5;`
)
