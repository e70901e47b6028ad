// Package e2e holds the end-to-end tests of track: sender processes (the track library, or the
// plain OTel SDK) count a known number of increments into the built collector binary
// (bin/otelcol-track, run with examples/collector.yaml) and a real Postgres, and every scenario
// asserts that the sum in track.minutely is exactly what was sent, through collector crashes,
// Postgres restarts, a collector started before Postgres, two collectors at once, PII in attributes and refused senders.
//
// The tests need the collector binary: `make test` builds it first (`make collector`). Run alone:
//
//	make collector && go test -count=1 -v ./e2e/
//
// TRACK_COLLECTOR_BIN overrides the binary's path. Without the binary the tests fail; they never
// skip. Postgres comes from internal/pgtest (TRACK_TEST_DSN, or a throwaway cluster), except for
// the scenarios that stop Postgres (restarted, down at the collector's start), which always start
// their own cluster. The collector processes come from internal/harness (free ports, the
// environment of examples/collector.yaml, the health wait), which the demo driver (examples/demo)
// shares. Every process a test starts listens on loopback only and is stopped when the test ends;
// every wait is bounded.
//
// The package has no exported API: it is only tests and the sender command in internal/sender.
package e2e
