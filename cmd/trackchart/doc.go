// Command trackchart draws a track counter as a bar chart in the terminal, like the sample charts
// of the design: one bar per step, a y axis scaled to the peak, the time range under the x axis,
// and the peak value and its time in the title. It also lists the steps track.anomalies flags.
//
// It reads Postgres through the query API of the pgrollup exporter, so it works against any
// database the exporter writes into, with a read-only analyst role (EXECUTE on the functions):
//
//   - track.series(metric, since, until, step, filter, tz) for the bars (migration 006);
//   - track.anomalies(since, until, step, metric) for the marks and the list (migration 007).
//
// Usage:
//
//	trackchart -metric new-signup [-dsn postgres://...] [-since 1h | -from T [-to T]] [-step 1m]
//	           [-tz Europe/Berlin | -utc] [-filter '{"service":"login-service"}'] [-schema track]
//	           [-height 8] [-width 120] [-title "signups"] [-mark=false] [-timeout 30s]
//	trackchart anomalies [-metric new-signup] [-dsn ...] [-since 24h | -from T [-to T]] [-step 1m]
//	           [-tz ...] [-schema track]
//	trackchart -h
//
// What the chart shows:
//
//   - A complete step with no counts is an empty column: a metric that drops to zero shows as a gap.
//   - An incomplete step, whose counts may still arrive (track.series' complete is false: the
//     current step, a step past the pipeline's watermark, or one in an ingestion gap), is drawn in
//     light shade (░) as high as what has arrived so far, with a '?' on the axis under it, also
//     when nothing has arrived: it never reads as a drop to zero. A legend line says so and how
//     much of the total is in such steps.
//   - A step track.anomalies flags gets ▼ (drop) or ▲ (spike) under the axis, and a legend line.
//     Anomalies are judged on a metric's total, so a chart with -filter marks none (and says so).
//     When the database cannot answer (no migration 007, a step anomalies() refuses, no grant) the
//     chart is drawn unmarked with a note saying why.
//   - When there are more steps than fit in -width columns, adjacent steps are added together and
//     the title names the wider step; a merged step is incomplete when one of its steps is, and
//     carries the most severe anomaly among them.
//   - Times are printed in -tz. The time labels under the axis are never cut: the last one is left
//     out when it does not fit (the footer gives the whole range). The layout is the shortest that
//     shows each step start exactly: 2006-01 for month steps, 01-02 for steps at local midnight,
//     15:04 for a range of a day or less, 01-02 15:04 otherwise.
//
// trackchart anomalies prints one line per flagged step (time, metric, kind, value, expected,
// normal range, score), oldest first, of one metric or of every metric, judged on complete steps
// only; "no anomalies of ..." when there are none. track.anomalies takes steps of whole minutes up
// to a day and ranges up to 31 days, and aligns its steps to UTC: its days start at UTC midnight,
// whatever -tz (which sets only how the times are printed). A chart whose steps in -tz start
// elsewhere (days outside UTC, hours at +05:30) cannot place those marks and says how many it left
// out. Its exit status does not depend on whether any
// were found (the alerting is trackwatch's job).
//
// Flags:
//
//   - -dsn defaults to $TRACK_PG_DSN. The help shows it with its password masked, and no error
//     ever prints the password, whoever wrote the error (pgx's connection errors included).
//   - -since and -step take Go's duration units and d (a day), w (7 days), mo (a month) and y
//     (12 months): 90s, 15m, 6h, 7d, 2w, 1mo, 1d12h. A step of 24h is a day. Steps of a day or
//     more start at midnight in -tz (weeks on Monday, months on the first), and a day across a DST
//     change holds that local day: 23 or 25 hours. The days of -since are local calendar days.
//     Without -since the range is 60 steps (an hour per minute), 30 steps of days but at most 11
//     weeks, or 12 steps of months. Outside UTC, series() can start days at local midnight only
//     where hours (or minutes) are kept, 90 days by default: a longer range of days or months
//     in such a zone is refused, naming -tz, with what to do instead.
//   - -tz takes an IANA zone name and defaults to the environment's zone: $TZ when set, else the
//     zone /etc/localtime links to, else /etc/timezone, else UTC with a note under the chart. -utc
//     is -tz UTC.
//   - -from and -to take RFC 3339 times, or 2006-01-02, 2006-01-02T15:04 (and with seconds) read
//     in -tz; -to defaults to now; -from and -since exclude each other.
//   - -filter is a JSON object the series' attributes (and "service") must contain.
//
// Every refusal of a flag names the flag, and so does every refusal of the database that is about
// an argument: an unknown metric (-metric, with the database's suggestions of close names), a
// step finer than what is stored or that does not divide into stored buckets (-step, with the
// step to use instead), a zone Postgres does not know (-tz), a bad range (-since, -from or -to).
// An error after -timeout (default 30s, for connecting and querying together) says so.
//
// Exit status: 0 when the chart or the list was printed (also with nothing counted) and for -h;
// 1 when connecting or querying failed, or the schema lacks the functions (run trackctl migrate);
// 2 when the command line is wrong: a flag, or a metric, step, range or zone the database refused.
package main
