// Package tally holds what the sampler's stages count while they process one batch: the reasons
// for every drop, removal, redaction, cut and repair, and the per-batch counts the processor adds to
// its telemetry once per batch. A Counts is not safe for concurrent use: each batch has its own.
package tally // import "github.com/trackhq/track/processor/sampler/internal/tally"
