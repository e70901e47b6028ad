// Command trackwatch tells people when a metric's counts go wrong: it polls the anomalies view of
// the pgrollup exporter's query API, track.anomalies_now (migration 7), and posts JSON to a
// webhook, once when an anomaly of a metric starts and once when it ends, never while it lasts.
//
// The JSON has a "text" field, so a Slack incoming webhook (or Mattermost's, Rocket.Chat's, or
// Discord's /slack endpoint) shows it as a message as it is; the other fields are for programs:
//
//	{"text": ":rotating_light: *new-signup*: drop since 2026-11-30 02:31 UTC: 0 where 31 was expected (normal 18 to 45, score 9.2)",
//	 "event": "started", "metric": "new-signup", "kind": "drop", "since": "2026-11-30T02:31:00Z",
//	 "latest": {"time": "2026-11-30T02:33:00Z", "metric": "new-signup", "value": 0, "expected": 31, "lower": 18,
//	            "upper": 45, "score": 9.2, "kind": "drop", "started": "2026-11-30T02:31:00Z", "baseline": "weekly"},
//	 "worst": {...}}
//
// "latest" and "worst" are rows of the view (the latest anomalous bucket seen, and the one with the
// highest score); "since" is the start of the run of anomalous minutes the view reports. The
// "ended" message adds "until", the start of the last anomalous bucket seen. A number the view
// leaves NULL is null. A young metric (baseline "recent") says so in the text.
//
// Rules:
//   - The view lists the metrics whose latest complete minute is anomalous (see "Anomalies" in the
//     pgrollup README for the model and the score).
//   - An anomaly is a (metric, kind) pair: a drop and a spike of one metric are two anomalies.
//   - It starts at the first poll that returns it, and ends once the polls have not returned it for
//     -end-after (2m), so that one normal bucket inside a long anomaly does not end and restart it.
//   - A message the webhook does not take is retried with exponential backoff
//     (github.com/cenkalti/backoff) for -retry-for (1m): network errors, timeouts, 408, 429 and
//     5xx, honouring Retry-After. Other answers (a 404 from a revoked hook) are not retried. A
//     message still undelivered is tried again at the next poll; an anomaly that ends before its
//     start was delivered is dropped without a message.
//   - A poll that fails (Postgres down) changes nothing: no anomaly ends because it could not be
//     read.
//   - Restarts: without -state the open anomalies live in memory, so after a restart an anomaly
//     still going is announced again, once, and one that ended while the watcher was stopped gets
//     no end message. With -state FILE they are kept in FILE (written atomically after each change):
//     nothing is repeated, and an anomaly that ended meanwhile gets its end message -end-after
//     after the restart. One FILE per watcher.
//
// -metric watches one metric; a name never counted is an error at start (exit 2) with the
// database's hint, not a watcher that never posts.
//
// Secrets are never printed: the DSN (default $TRACK_PG_DSN) and the webhook URL (default
// $TRACK_WEBHOOK_URL; Slack keeps its secret in the path) are not shown as flag defaults, and
// errors name the webhook by its scheme and host only.
//
// Usage:
//
//	trackwatch -webhook URL [-dsn DSN] [-interval 30s] [-end-after 2m] [-retry-for 1m]
//	           [-metric new-signup] [-state FILE] [-once] [-schema track] [-tz UTC] [-timeout 10s]
//
// It exits 0 on -h and on SIGINT or SIGTERM, 2 on a bad flag, and 1 when it cannot start (or, with
// -once, when the poll or a post failed).
package main
