// Package sampling is the sampler's sampling stage: its configuration, and the decisions that keep
// log records and metric points with a probability p without biasing totals: kept items stand for
// 1/p items (the Horvitz–Thompson estimator; the OpenTelemetry probability sampling
// specification's adjusted count), decisions are nested across probabilities and consistent on a
// user or trace, and scaled integer values are rounded at random so that their expectation is
// exact. Everything here is safe for concurrent use.
package sampling // import "github.com/trackhq/track/processor/sampler/internal/sampling"
