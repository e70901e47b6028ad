// Package validate is the sampler's validation stage: its configuration, and the sanitising that
// makes every string, key, value and timestamp storable in Postgres (NUL bytes and invalid UTF-8
// replaced, keys, values and nesting bounded, repeated keys resolved, timestamps checked). Each
// repair, cut and refusal is counted into a tally.Counts. The functions are safe for concurrent use
// on distinct data; a KeyGuard is not safe for concurrent use.
package validate // import "github.com/trackhq/track/processor/sampler/internal/validate"
