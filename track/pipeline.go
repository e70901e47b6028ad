package track

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/trackhq/track/internal/conventions"
)

// scopeName is the instrumentation scope of track's instruments.
const scopeName = "github.com/trackhq/track"

// pipeline connects a tracker to OpenTelemetry: counters go to track's own
// MeterProvider, whose periodic reader collects track's deltas through a
// producer and exports them through the backlog, or to observable counters
// on a provider the service owns; events go to track's own LoggerProvider
// with a backlog exporter.
type pipeline struct {
	meter    metric.Meter             // the service's provider's; nil with track's own
	provider *sdkmetric.MeterProvider // nil when the service owns the provider
	logs     *sdklog.LoggerProvider
	logger   log.Logger
	refusals *refusals

	regsMu sync.Mutex // register runs under the registry's lock, shutdown does not
	regs   []metric.Registration

	// Event counts when the pipeline started, to count at shutdown the
	// events the batch processor dropped.
	emittedAtStart, settledAtStart uint64
}

func newPipeline(ctx context.Context, cfg config, reg *registry, stats *exportStats, r *refusals) (*pipeline, error) {
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	logExp, err := newOTLPLogExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &pipeline{refusals: r}
	if cfg.meterProvider != nil {
		p.meter = cfg.meterProvider.Meter(scopeName)
	} else {
		exp, err := newOTLPMetricExporter(ctx, cfg)
		if err != nil {
			_ = logExp.Shutdown(ctx)
			return nil, err
		}
		readerOpts := []sdkmetric.PeriodicReaderOption{sdkmetric.WithProducer(newProducer(reg, cfg.idleIntervals))}
		if cfg.interval > 0 {
			readerOpts = append(readerOpts, sdkmetric.WithInterval(cfg.interval))
		} else if os.Getenv("OTEL_METRIC_EXPORT_INTERVAL") == "" {
			readerOpts = append(readerOpts, sdkmetric.WithInterval(defaultInterval))
		}
		p.provider = sdkmetric.NewMeterProvider(
			sdkmetric.WithResource(res),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(newMetricExporter(exp, cfg.backlog, stats, r.report), readerOpts...)),
		)
	}
	p.logs = sdklog.NewLoggerProvider(
		sdklog.WithResource(res),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(newLogExporter(logExp, cfg.backlog, stats, r.report),
			sdklog.WithExportInterval(eventExportInterval), sdklog.WithMaxQueueSize(eventQueueSize))),
	)
	p.logger = p.logs.Logger(scopeName)
	return p, nil
}

// register creates c's observable counter on the service's provider (see
// WithMeterProvider). It is called with the registry lock held, so it never
// runs concurrently with itself or shutdown.
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
	p.regsMu.Lock()
	p.regs = append(p.regs, reg)
	p.regsMu.Unlock()
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

// shutdown exports what is left of both signals. Each provider's last export
// is followed by its backlog draining until ctx ends.
func (p *pipeline) shutdown(ctx context.Context) error {
	errs := []error{p.logs.Shutdown(ctx)}
	if p.provider != nil {
		errs = append(errs, p.provider.Shutdown(ctx))
	} else {
		// The service owns the provider: only stop observing on it.
		p.regsMu.Lock()
		for _, r := range p.regs {
			errs = append(errs, r.Unregister())
		}
		p.regsMu.Unlock()
	}
	return errors.Join(errs...)
}

// endpointOptions spells t's endpoint and headers in one exporter package's
// option type: the four OTLP exporters take the same settings, each with
// its own types.
func endpointOptions[O any](t otlpTarget, withURL, withEndpoint func(string) O, withInsecure func() O, withHeaders func(map[string]string) O) []O {
	var opts []O
	switch {
	case t.url != "":
		opts = append(opts, withURL(t.url))
	case t.hostPort != "":
		opts = append(opts, withEndpoint(t.hostPort), withInsecure())
	}
	if t.headers != nil {
		opts = append(opts, withHeaders(t.headers))
	}
	return opts
}

// The exporters never retry inside one export: the backlog retries every
// interval, in order, and a retry inside an export would only delay the next
// collection.

func newOTLPMetricExporter(ctx context.Context, cfg config) (sdkmetric.Exporter, error) {
	t, err := resolveTarget(cfg, "METRICS", "/v1/metrics")
	if err != nil {
		return nil, err
	}
	var exp sdkmetric.Exporter
	if t.protocol == ProtocolHTTPProtobuf {
		exp, err = otlpmetrichttp.New(ctx, append([]otlpmetrichttp.Option{
			otlpmetrichttp.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
		}, endpointOptions(t, otlpmetrichttp.WithEndpointURL, otlpmetrichttp.WithEndpoint, otlpmetrichttp.WithInsecure, otlpmetrichttp.WithHeaders)...)...)
	} else {
		exp, err = otlpmetricgrpc.New(ctx, append([]otlpmetricgrpc.Option{
			otlpmetricgrpc.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector),
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}),
		}, endpointOptions(t, otlpmetricgrpc.WithEndpointURL, otlpmetricgrpc.WithEndpoint, otlpmetricgrpc.WithInsecure, otlpmetricgrpc.WithHeaders)...)...)
	}
	if err != nil {
		return nil, fmt.Errorf("creating OTLP %s metric exporter: %w", t.protocol, err)
	}
	return exp, nil
}

func newOTLPLogExporter(ctx context.Context, cfg config) (sdklog.Exporter, error) {
	t, err := resolveTarget(cfg, "LOGS", "/v1/logs")
	if err != nil {
		return nil, err
	}
	var exp sdklog.Exporter
	if t.protocol == ProtocolHTTPProtobuf {
		exp, err = otlploghttp.New(ctx, append([]otlploghttp.Option{otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false})},
			endpointOptions(t, otlploghttp.WithEndpointURL, otlploghttp.WithEndpoint, otlploghttp.WithInsecure, otlploghttp.WithHeaders)...)...)
	} else {
		exp, err = otlploggrpc.New(ctx, append([]otlploggrpc.Option{otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false})},
			endpointOptions(t, otlploggrpc.WithEndpointURL, otlploggrpc.WithEndpoint, otlploggrpc.WithInsecure, otlploggrpc.WithHeaders)...)...)
	}
	if err != nil {
		return nil, fmt.Errorf("creating OTLP %s log exporter: %w", t.protocol, err)
	}
	return exp, nil
}

// newResource builds, lowest precedence first: the SDK default (with
// unknown_service), the host, a generated service.instance.id,
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, WithResource, and
// WithServiceName.
func newResource(ctx context.Context, cfg config) (*resource.Resource, error) {
	detected, err := resource.New(ctx,
		resource.WithHost(),
		resource.WithAttributes(attribute.String(conventions.ServiceInstanceID, uuid.NewString())),
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
		named := resource.NewSchemaless(attribute.String(conventions.ServiceName, cfg.serviceName))
		if res, err = resource.Merge(res, named); err != nil {
			return nil, fmt.Errorf("merging the service name: %w", err)
		}
	}
	return res, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
