package track

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// scopeName is the instrumentation scope of track's instruments.
const scopeName = "github.com/trackhq/track"

// pipeline connects a registry to an OpenTelemetry meter: either track's own
// MeterProvider with the backlog exporter, or a provider the service owns.
type pipeline struct {
	meter    metric.Meter
	provider *sdkmetric.MeterProvider // nil when the service owns the provider
	refusals *refusals
	regs     []metric.Registration
}

func newPipeline(ctx context.Context, cfg config, stats *exportStats, r *refusals) (*pipeline, error) {
	if cfg.meterProvider != nil {
		return &pipeline{meter: cfg.meterProvider.Meter(scopeName), refusals: r}, nil
	}
	exp, err := newOTLPExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var readerOpts []sdkmetric.PeriodicReaderOption
	if cfg.interval > 0 {
		readerOpts = append(readerOpts, sdkmetric.WithInterval(cfg.interval))
	} else if os.Getenv("OTEL_METRIC_EXPORT_INTERVAL") == "" {
		readerOpts = append(readerOpts, sdkmetric.WithInterval(defaultInterval))
	}
	backlog := &backlogExporter{next: exp, limit: cfg.backlog, stats: stats, report: r.report}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(backlog, readerOpts...)),
		// track caps series itself; the SDK must never fold them again.
		sdkmetric.WithCardinalityLimit(0),
	)
	return &pipeline{meter: mp.Meter(scopeName), provider: mp, refusals: r}, nil
}

// register creates c's observable counter. It is called with the registry
// lock held, so it never runs concurrently with itself or shutdown.
func (p *pipeline) register(c *counter) {
	inst, err := p.meter.Int64ObservableCounter(c.name)
	if err != nil {
		p.refusals.report(fmt.Errorf("creating instrument %q: %w", c.name, err))
		return
	}
	reg, err := p.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		c.observe(o, inst)
		return nil
	}, inst)
	if err != nil {
		p.refusals.report(fmt.Errorf("registering instrument %q: %w", c.name, err))
		return
	}
	p.regs = append(p.regs, reg)
}

// observe hands the cumulative total of each series, less what earlier
// pipelines reported, to the SDK, which turns them into deltas.
func (c *counter) observe(o metric.Observer, inst metric.Int64Observable) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.list {
		s.observed = s.total()
		o.ObserveInt64(inst, s.observed-s.base, metric.WithAttributeSet(s.attrs))
	}
}

func (p *pipeline) shutdown(ctx context.Context) error {
	if p.provider != nil {
		// The provider's reader collects and exports one last time, then the
		// backlog exporter drains until ctx ends.
		return p.provider.Shutdown(ctx)
	}
	// The service owns the provider: only stop observing on it.
	var errs []error
	for _, r := range p.regs {
		errs = append(errs, r.Unregister())
	}
	return errors.Join(errs...)
}

func newOTLPExporter(ctx context.Context, cfg config) (sdkmetric.Exporter, error) {
	protocol := cfg.protocol
	if protocol == "" {
		protocol = firstEnv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	endpointFromEnv := firstEnv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	endpoint := cfg.endpoint
	switch protocol {
	case "", ProtocolGRPC:
		opts := []otlpmetricgrpc.Option{
			otlpmetricgrpc.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector),
			// The backlog retries every interval, in order; retrying inside one
			// export would only delay the next collection.
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}),
		}
		if endpoint == "" && !endpointFromEnv {
			endpoint = "localhost:4317"
		}
		if strings.Contains(endpoint, "://") {
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(endpoint))
		} else if endpoint != "" {
			opts = append(opts, otlpmetricgrpc.WithEndpoint(endpoint), otlpmetricgrpc.WithInsecure())
		}
		if cfg.headers != nil {
			opts = append(opts, otlpmetricgrpc.WithHeaders(cfg.headers))
		}
		exp, err := otlpmetricgrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("creating OTLP gRPC exporter: %w", err)
		}
		return exp, nil
	case ProtocolHTTPProtobuf:
		opts := []otlpmetrichttp.Option{
			otlpmetrichttp.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
		}
		if endpoint == "" && !endpointFromEnv {
			endpoint = "localhost:4318"
		}
		if strings.Contains(endpoint, "://") {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(withMetricsPath(endpoint)))
		} else if endpoint != "" {
			opts = append(opts, otlpmetrichttp.WithEndpoint(endpoint), otlpmetrichttp.WithInsecure())
		}
		if cfg.headers != nil {
			opts = append(opts, otlpmetrichttp.WithHeaders(cfg.headers))
		}
		exp, err := otlpmetrichttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("creating OTLP HTTP exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("%w: OTLP protocol %q is not %q or %q", ErrInvalidOption, protocol, ProtocolGRPC, ProtocolHTTPProtobuf)
	}
}

// newResource builds, lowest precedence first: the SDK default (with
// unknown_service), the host, a generated service.instance.id,
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, WithResource, and
// WithServiceName.
func newResource(ctx context.Context, cfg config) (*resource.Resource, error) {
	detected, err := resource.New(ctx,
		resource.WithHost(),
		resource.WithAttributes(attribute.String("service.instance.id", uuid.NewString())),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: detecting the resource: %v", ErrInvalidOption, err)
	}
	res, err := resource.Merge(resource.Default(), detected)
	if err != nil {
		return nil, fmt.Errorf("merging the resource: %w", err)
	}
	if cfg.resource != nil {
		if res, err = resource.Merge(res, cfg.resource); err != nil {
			return nil, fmt.Errorf("%w: WithResource: %v", ErrInvalidOption, err)
		}
	}
	if cfg.serviceName != "" {
		named := resource.NewSchemaless(attribute.String("service.name", cfg.serviceName))
		if res, err = resource.Merge(res, named); err != nil {
			return nil, fmt.Errorf("merging the service name: %w", err)
		}
	}
	return res, nil
}

// withMetricsPath appends the OTLP metrics path to a base URL without one,
// as the exporter does for OTEL_EXPORTER_OTLP_ENDPOINT.
func withMetricsPath(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/metrics"
	return u.String()
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
