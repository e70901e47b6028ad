// Package otlptest is a real OTLP receiving end for tests: the gRPC and HTTP
// metrics services from go.opentelemetry.io/proto/otlp, served on loopback.
// It records every request it accepts, flattens them into points for
// assertions, and can be told to fail or to hang, to play a collector outage.
package otlptest
