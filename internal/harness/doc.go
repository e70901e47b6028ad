// Package harness runs otelcol-track as a child process for the end-to-end tests (e2e/) and the
// demo driver (examples/demo): free loopback ports for every endpoint of examples/collector.yaml,
// the environment that config reads, the Go runtime settings it recommends, a wait until the
// health_check extension reports the pipeline ready, and a graceful stop (SIGTERM, then SIGKILL
// after a timeout) or a crash (SIGKILL).
//
// It does not import testing: callers pass a Logger (a testing.TB is one) and get errors back, so
// that a plain binary can use it as well as a test.
package harness
