// Command trackchart draws a track counter as a bar chart in the terminal, like the sample charts
// of the design: one bar per step, a y axis scaled to the peak, the time range under the x axis,
// and the peak value and its time in the title.
//
// It reads the series from Postgres through the query API of the pgrollup exporter,
// track.series(metric, since, until, step, filter), so it works against any database the
// exporter writes into, with a read-only analyst role. Steps with no counts are drawn as empty
// columns: a metric that drops to zero shows as a gap.
//
// Usage:
//
//	trackchart -metric new-signup [-dsn postgres://...] [-since 1h | -from T -to T] [-step 1m]
//	           [-filter '{"service":"login-service"}'] [-schema track] [-height 8] [-width 100]
//	           [-title "signups per minute"] [-utc]
//
// The DSN defaults to $TRACK_PG_DSN. -from and -to take RFC 3339 times; without them the range
// is the last -since, up to now. When there are more steps than fit in -width columns, adjacent
// steps are added together and the title names the wider step.
package main
