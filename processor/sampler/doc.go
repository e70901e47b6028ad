// Package sampler implements the "sampler" Collector processor for metrics and logs. It
// validates incoming data, scrubs PII from attributes and log bodies, replaces user identifiers by a
// keyed hash, caps the number of distinct attribute sets per metric, and samples log records and
// (optionally) metric points so that totals estimated downstream stay unbiased. Every decision it
// makes is counted in its own telemetry. See README.md for the configuration and the semantics.
//
//go:generate mdatagen metadata.yaml
package sampler // import "github.com/trackhq/track/processor/sampler"
