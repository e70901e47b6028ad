// Package conventions is the one vocabulary that the track library, the sampler processor and the
// pgrollup exporter share: the attribute keys the OpenTelemetry semantic conventions define (taken
// from go.opentelemetry.io/otel/semconv, never spelled out again), the few keys of our own, the
// instrument-name rule, the rule for schema and role names written into SQL, and the time limits on
// data points.
//
// Everything here is a constant or a pure function, safe for concurrent use.
package conventions
