// Package requestkey computes the idempotency key of a pushed request: a 128-bit XXH3 hash of the
// whole request, the same for a retry, a replay from a persistent queue and a client's re-send,
// and different for two requests that differ in any field. pgrollup records the key with the
// counts it commits, so that a request is counted exactly once.
package requestkey
