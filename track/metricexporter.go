package track

import (
	"context"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// metricExporter puts a backlog in front of the OTLP metric exporter.
type metricExporter struct {
	next    sdkmetric.Exporter
	backlog *backlog[*metricdata.ResourceMetrics]
}

var _ sdkmetric.Exporter = (*metricExporter)(nil)

func newMetricExporter(next sdkmetric.Exporter, limit int, stats *exportStats, report func(error)) *metricExporter {
	return &metricExporter{next: next, backlog: &backlog[*metricdata.ResourceMetrics]{
		send: next.Export, limit: limit, what: "points", flow: &stats.points, failures: &stats.failures, report: report,
	}}
}

func (e *metricExporter) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	return e.next.Temporality(k)
}

func (e *metricExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return e.next.Aggregation(k)
}

// Export queues rm's points and sends the backlog. Failures go to the error
// handler, not to the SDK. The SDK reuses rm after Export returns, but not
// the metrics in it: they come from track's producer, which allocates them
// anew in each collection, so only the outer slice is copied.
func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	batch, points := takeBatch(rm)
	e.backlog.push(ctx, batch, points)
	return nil
}

func (e *metricExporter) ForceFlush(ctx context.Context) error {
	if err := e.backlog.flush(ctx); err != nil {
		return err
	}
	return e.next.ForceFlush(ctx)
}

func (e *metricExporter) Shutdown(ctx context.Context) error {
	return shutdownAfter(ctx, e.backlog, e.next.Shutdown)
}

// takeBatch copies the outer slice of rm and counts its data points (the
// producer emits no zero deltas).
func takeBatch(rm *metricdata.ResourceMetrics) (*metricdata.ResourceMetrics, int) {
	out := &metricdata.ResourceMetrics{Resource: rm.Resource, ScopeMetrics: slices.Clone(rm.ScopeMetrics)}
	points := 0
	for _, sm := range out.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				points += len(sum.DataPoints)
			}
		}
	}
	return out, points
}
