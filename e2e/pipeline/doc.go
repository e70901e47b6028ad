// Package pipeline tests the collector's own pipeline in one process: the sampler processor in
// front of the pgrollup exporter, writing into a real Postgres (internal/pgtest).
//
// Its fuzz targets mutate real OTLP metrics and logs requests and push each mutant through
// sampler → pgrollup beside a healthy request. Beyond "no panic", they assert the properties the
// product promises for hostile input: the healthy request beside a fuzzed one is stored exactly once,
// a fuzzed request is either written or refused with a permanent error (never a retryable one that
// the queue would retry forever), and neither push blocks. `go test` runs the seeds; `make fuzz`
// runs the targets for longer.
package pipeline
