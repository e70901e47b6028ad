package track_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/internal/otlptest"
	"github.com/trackhq/track/track"
)

const (
	envGeneric = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envMetrics = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
	envLogs    = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
)

// hostPort is r's listener for proto as a plain host:port.
func hostPort(r *otlptest.Receiver, proto string) string {
	if proto == track.ProtocolHTTPProtobuf {
		return strings.TrimPrefix(r.HTTPEndpoint, "http://")
	}
	return r.GRPCEndpoint
}

// baseURL is r's listener for proto as a URL.
func baseURL(r *otlptest.Receiver, proto string) string {
	if proto == track.ProtocolHTTPProtobuf {
		return r.HTTPEndpoint
	}
	return "http://" + r.GRPCEndpoint
}

func localhost(hostPort string) string { return strings.Replace(hostPort, "127.0.0.1", "localhost", 1) }

// An endpoint variable without a scheme is a plaintext host:port, as
// WithEndpoint takes it, for both signals and both protocols.
func TestEndpointVariablesWithoutASchemeAreHostPort(t *testing.T) {
	for _, proto := range []string{track.ProtocolGRPC, track.ProtocolHTTPProtobuf} {
		cases := []struct {
			name string
			// env gets the main receiver's address from main and the other
			// receiver's from other.
			env func(main, other *otlptest.Receiver) map[string]string
			// Which receiver each signal must reach.
			metricsAtMain, eventsAtMain bool
		}{
			{"generic, IP", func(m, _ *otlptest.Receiver) map[string]string {
				return map[string]string{envGeneric: hostPort(m, proto)}
			}, true, true},
			{"generic, localhost", func(m, _ *otlptest.Receiver) map[string]string {
				return map[string]string{envGeneric: localhost(hostPort(m, proto))}
			}, true, true},
			{"generic, surrounding spaces", func(m, _ *otlptest.Receiver) map[string]string {
				return map[string]string{envGeneric: " " + hostPort(m, proto) + " "}
			}, true, true},
			{"metrics variable wins for metrics only", func(m, o *otlptest.Receiver) map[string]string {
				return map[string]string{envMetrics: hostPort(m, proto), envGeneric: baseURL(o, proto)}
			}, true, false},
			{"logs variable wins for events only", func(m, o *otlptest.Receiver) map[string]string {
				return map[string]string{envLogs: hostPort(m, proto), envGeneric: baseURL(o, proto)}
			}, false, true},
			{"metrics variable, localhost", func(m, o *otlptest.Receiver) map[string]string {
				return map[string]string{envMetrics: localhost(hostPort(m, proto)), envGeneric: baseURL(o, proto)}
			}, true, false},
			{"logs variable, localhost", func(m, o *otlptest.Receiver) map[string]string {
				return map[string]string{envLogs: localhost(hostPort(m, proto)), envGeneric: baseURL(o, proto)}
			}, false, true},
		}
		for _, c := range cases {
			t.Run(proto+"/"+c.name, func(t *testing.T) {
				main, other := otlptest.Start(t), otlptest.Start(t)
				t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
				for k, v := range c.env(main, other) {
					t.Setenv(k, v)
				}
				tr, err := track.New(context.Background(), track.WithInterval(never))
				require.NoError(t, err)
				ctx := context.Background()
				tr.Add("endpoint-check", 3)
				tr.Event(ctx, "endpoint_check")
				// Bounded: counts sent elsewhere would be retried until then.
				shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				require.NoError(t, tr.Shutdown(shutdownCtx))

				metricsAt, eventsAt := other, other
				if c.metricsAtMain {
					metricsAt = main
				}
				if c.eventsAtMain {
					eventsAt = main
				}
				assert.Equal(t, int64(3), metricsAt.Sum("endpoint-check", nil), "counts reach the configured endpoint")
				require.Len(t, eventsAt.Logs(), 1, "the event reaches the configured endpoint")
				assert.Equal(t, "endpoint_check", eventsAt.Logs()[0].EventName)
				st := tr.Stats()
				assert.Zero(t, st.PointsDropped)
				assert.Zero(t, st.EventsDropped)
				assert.Zero(t, st.ExportFailures)
			})
		}
	}
}

// A value track cannot use makes New fail, naming the variable; it never
// falls back to another endpoint.
func TestMalformedEndpointsAreRefused(t *testing.T) {
	values := []struct{ value, want string }{
		{":::", "too many colons"},
		{"http://", "empty host"},
		{"https://:4317", "empty host"},
		{":4317", "empty host"},
		{"localhost:99999", `port "99999"`},
		{"localhost:0", `port "0"`},
		{"localhost:abc", `port "abc"`},
		{"http://localhost:70000", `port "70000"`},
		{"localhost", "missing port"},
		{"ftp://collector:4317", `scheme "ftp"`},
		{"http://local host:4317", "invalid character"},
	}
	for _, proto := range []string{track.ProtocolGRPC, track.ProtocolHTTPProtobuf} {
		for _, variable := range []string{envGeneric, envMetrics, envLogs} {
			for _, v := range values {
				t.Run(proto+"/"+variable+"/"+v.value, func(t *testing.T) {
					t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
					t.Setenv(variable, v.value)
					tr, err := track.New(context.Background(), track.WithInterval(never))
					require.ErrorIs(t, err, track.ErrInvalidOption)
					assert.ErrorContains(t, err, variable+"=")
					assert.ErrorContains(t, err, v.want)
					assert.Nil(t, tr)

					shutdown, err := track.Start(context.Background())
					require.ErrorIs(t, err, track.ErrInvalidOption, "Start refuses it as New does")
					assert.Nil(t, shutdown)
				})
			}
		}
	}
	t.Run("WithEndpoint", func(t *testing.T) {
		_, err := track.New(context.Background(), track.WithEndpoint("localhost:99999"))
		require.ErrorIs(t, err, track.ErrInvalidOption)
		assert.ErrorContains(t, err, `WithEndpoint="localhost:99999"`)
	})
}
