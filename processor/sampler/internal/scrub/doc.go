// Package scrub is the sampler's scrubbing stage: its configuration, the word matcher that finds
// secret and PII attribute keys (deny_keys, and location's drop_keys), and the Scrubber that redacts
// emails, card numbers, tokens, IP addresses and custom patterns inside values and log bodies.
// Redactions are counted into a tally.Counts. A Scrubber, a WordMatcher and a KeySet are safe for
// concurrent use once built.
package scrub // import "github.com/trackhq/track/processor/sampler/internal/scrub"
