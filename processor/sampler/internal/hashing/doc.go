// Package hashing is the sampler's hashing stage: its configuration, and the Hasher that replaces
// identifiers (user ids) by a truncated, hex-encoded HMAC-SHA256 (RFC 2104) under a key that every
// collector instance shares. A Hasher is safe for concurrent use.
package hashing // import "github.com/trackhq/track/processor/sampler/internal/hashing"
