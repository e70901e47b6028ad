package track

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Protocols accepted by WithProtocol and OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

const (
	defaultInterval    = 10 * time.Second
	defaultBacklog     = 60 // ten minutes of exports at the default interval
	defaultSeriesLimit = 2000
	// defaultIdleIntervals forgets a series after one collection without
	// increments: the limit then applies to the sets used in the current
	// and the previous interval, close to the SDK's delta aggregation, which
	// keeps those of the current interval only.
	defaultIdleIntervals = 1
)

// Option configures a Tracker in New or Start. Options win over the
// corresponding OTEL_* environment variables.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	endpoint      string
	protocol      string
	headers       map[string]string
	interval      time.Duration
	resource      *resource.Resource
	serviceName   string
	meterProvider metric.MeterProvider
	backlog       int
	seriesLimit   int
	idleIntervals int
	idleSet       bool
	errorHandler  func(error)
	err           error
}

func newConfig(opts []Option) config {
	c := config{backlog: defaultBacklog, seriesLimit: defaultSeriesLimit, idleIntervals: defaultIdleIntervals}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.idleSet && c.meterProvider != nil {
		c.invalid("WithIdleIntervals does not apply with WithMeterProvider: series on the service's provider are never forgotten")
	}
	if c.errorHandler == nil {
		c.errorHandler = otel.Handle
	}
	return c
}

func (c *config) invalid(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
	}
}

// WithEndpoint sets where the OTLP exporters send counts and events: a URL
// such as "https://collector:4317" (https means TLS, http plaintext) or a
// plain "host:port", which is sent in plaintext. Over HTTP, a URL without a
// path gets /v1/metrics (and /v1/logs for events). Without it,
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT for
// events), then OTEL_EXPORTER_OTLP_ENDPOINT, is used, and without those
// plaintext localhost:4317 for gRPC or localhost:4318 for HTTP.
//
// The variables take the same two forms: a value without a scheme, such as
// "127.0.0.1:4317" or "collector:4317", is a plaintext host:port as here,
// although the OpenTelemetry specification asks for a URL (the SDK's
// exporters, which read the variables too, may log that they cannot parse
// it; track does not use their reading). Over HTTP, the generic variable
// is a base URL to which /v1/metrics or /v1/logs is appended, and a
// per-signal URL is used as is, as the specification says. A value track
// cannot use (no host, a port outside 1-65535, a scheme other than http or
// https, such as ":::" or "http://") makes New and Start fail with an error
// wrapping ErrInvalidOption that names the option or variable: track never
// sends to another endpoint than the one configured.
func WithEndpoint(endpoint string) Option {
	return optionFunc(func(c *config) {
		if endpoint == "" {
			c.invalid("WithEndpoint: empty endpoint")
		}
		c.endpoint = endpoint
	})
}

// WithProtocol sets the OTLP transport: ProtocolGRPC or ProtocolHTTPProtobuf.
// Without it, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, then
// OTEL_EXPORTER_OTLP_PROTOCOL, is used, and without those gRPC.
func WithProtocol(protocol string) Option {
	return optionFunc(func(c *config) {
		if protocol != ProtocolGRPC && protocol != ProtocolHTTPProtobuf {
			c.invalid("WithProtocol: %q is not %q or %q", protocol, ProtocolGRPC, ProtocolHTTPProtobuf)
		}
		c.protocol = protocol
	})
}

// WithHeaders adds headers (for example an authorization bearer token) to
// every export. Without it, OTEL_EXPORTER_OTLP_METRICS_HEADERS and
// OTEL_EXPORTER_OTLP_HEADERS are used.
func WithHeaders(headers map[string]string) Option {
	return optionFunc(func(c *config) { c.headers = headers })
}

// WithInterval sets how often counts are collected and exported. Without it,
// OTEL_METRIC_EXPORT_INTERVAL (milliseconds) is used, and without that 10 s.
func WithInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.invalid("WithInterval: %v is not positive", d)
		}
		c.interval = d
	})
}

// WithResource adds the attributes of res to the exported resource; they win
// over detected and OTEL_RESOURCE_ATTRIBUTES values. Without it, the resource
// holds service.name, a generated service.instance.id, the host name, the
// SDK's attributes and those of OTEL_RESOURCE_ATTRIBUTES.
func WithResource(res *resource.Resource) Option {
	return optionFunc(func(c *config) { c.resource = res })
}

// WithServiceName sets service.name. Without it, OTEL_SERVICE_NAME, then
// service.name in OTEL_RESOURCE_ATTRIBUTES, is used, and without those
// "unknown_service:" followed by the executable's name.
func WithServiceName(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" {
			c.invalid("WithServiceName: empty name")
		}
		c.serviceName = name
	})
}

// WithMeterProvider makes track create its instruments on mp, a provider the
// service already owns, instead of building its own OTLP pipeline. The
// instruments are observable counters reporting cumulative totals; the
// provider's readers decide the temporality, so with a cumulative reader the
// exported values are totals since the process started. The provider's
// owner exports and shuts it down; track's backlog, interval, endpoint,
// protocol, headers and resource options do not apply, and the export
// fields of Statistics stay zero. Without it, track builds its own
// MeterProvider with an OTLP exporter and delta temporality.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp == nil {
			c.invalid("WithMeterProvider: nil provider")
		}
		c.meterProvider = mp
	})
}

// WithBacklog sets how many failed exports are kept to be sent again, oldest
// first, once the collector answers; when it is full the oldest export is
// dropped and its points counted in Statistics.PointsDropped. Zero keeps no
// backlog. Without it, 60 exports are kept: ten minutes at the default
// interval.
func WithBacklog(exports int) Option {
	return optionFunc(func(c *config) {
		if exports < 0 {
			c.invalid("WithBacklog: %d is negative", exports)
		}
		c.backlog = exports
	})
}

// WithSeriesLimit sets how many active attribute sets each name keeps;
// further sets fold into one series with otel.metric.overflow=true, and the
// first overflow of a name is reported to the error handler (wrapping
// ErrSeriesOverflow). Sets idle long enough are forgotten (see
// WithIdleIntervals) and free their place, so the limit bounds the sets in
// use at once, not those ever seen. Without it, the limit is 2000, the SDK's
// own default.
func WithSeriesLimit(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.invalid("WithSeriesLimit: %d is below 1", n)
		}
		c.seriesLimit = n
	})
}

// WithIdleIntervals sets after how many collections without an increment a
// series is forgotten: its delta has been exported by then, its memory is
// released and its place counts no more against WithSeriesLimit. A name
// whose series are all forgotten is forgotten too, and its place counts no
// more against the limit of 10000 names. The next increment of a forgotten
// series creates it again, and a CounterHandle bound to it attaches to the
// new one on its next use; no count is lost or counted twice, also when an
// increment races with the forgetting. Recreating a series costs about a
// microsecond (an attribute.Set and a lock), so a larger n suits sets used
// less often than every other interval, at the price of counting them
// against the limit for longer. n must be at least 1. Without it, a series
// is forgotten at the first collection that finds it unchanged, so the
// limit applies to the sets counted in the current or the previous interval
// (the SDK's delta aggregation keeps those of the current one). It cannot
// be combined with WithMeterProvider, whose readers may need cumulative
// totals: series on a service's provider are never forgotten.
func WithIdleIntervals(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.invalid("WithIdleIntervals: %d is below 1", n)
		}
		c.idleIntervals = n
		c.idleSet = true
	})
}

// WithErrorHandler receives refused calls and the first overflow of each
// name (each rate-limited to one report per second, with a count of those
// not reported) and failed exports. It is
// called from track's own goroutines, never from the caller of Increment.
// Without it, errors go to otel.Handle, the global OpenTelemetry handler.
func WithErrorHandler(handle func(error)) Option {
	return optionFunc(func(c *config) {
		if handle == nil {
			c.invalid("WithErrorHandler: nil handler")
		}
		c.errorHandler = handle
	})
}
