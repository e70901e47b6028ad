// Package track counts operational events (signups, logins, errors,
// fraudulent cards) from inside a service and exports them over OTLP with
// delta temporality to an OpenTelemetry collector.
//
// A service starts the package-level tracker once and then counts from
// anywhere:
//
//	shutdown, err := track.Start(ctx) // reads OTEL_* variables; OTLP gRPC to localhost:4317 by default
//	if err != nil { ... }
//	defer shutdown(ctx)               // exports what is still in memory and in the backlog
//
//	track.Increment("new-signup")
//	track.Add("cards-checked", 3, attribute.String("result", "fraudulent"))
//
// # Hot path
//
// Increment and Add never call the OpenTelemetry SDK. They find the series
// for (name, attribute set) in track's own lock-free tables and add to a
// per-processor cell, so concurrent callers on different cores do not share a
// cache line. A name given as a string literal is found by its address
// without hashing. At each collection track reads the totals, computes the
// deltas and hands them to the SDK's periodic reader as a metric producer.
// For the tightest loops, Counter returns a pre-bound handle that skips the
// lookup.
//
// # Guarantees
//
//   - Increment, Add and the handles never block and never panic, before
//     Start, after Shutdown and under any input.
//   - Invalid names (empty, longer than 255 bytes, or outside the
//     OpenTelemetry instrument-name syntax) and negative values are refused,
//     counted in [Statistics.Refused] and reported, rate-limited, to the error
//     handler.
//   - Each name keeps at most a bounded number of active attribute sets
//     (2000 by default). Further sets fold into one series carrying
//     otel.metric.overflow=true, so totals stay exact and memory stays
//     bounded; the first overflow of a name is reported to the error handler.
//   - A series idle for a number of collections (one by default, see
//     WithIdleIntervals) is forgotten, and so is a name left without series:
//     the limits apply to what is in use, and memory stays flat while
//     attribute values churn. No count is lost or doubled by forgetting, also
//     when an increment races with it; a CounterHandle attaches to the new
//     series on its next use.
//   - An export that fails is kept in a bounded backlog and sent again, in
//     order and unmerged, when the collector answers: every delta keeps its
//     own time window. When the backlog is full the oldest export is dropped
//     and its points are counted in [Statistics.PointsDropped].
//   - An interval with nothing to send and no backlog held sends a
//     heartbeat: the resource and one point of 0 named track.heartbeat
//     (about 350 bytes), so a process that counts nothing shows as alive.
//     A heartbeat is never held or retried, and not counted as exported.
//
// # Calls before Start
//
// The package-level functions work before Start: counts are aggregated in
// memory and are exported with the first interval after Start. If Start is
// never called they are never sent. After the shutdown function returns,
// counts are still aggregated but not exported until Start is called again.
package track
