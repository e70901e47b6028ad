package track

import (
	"context"

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

// Export queues a copy of rm (the SDK reuses rm after Export returns) and
// sends the backlog. Failures go to the error handler, not to the SDK.
func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	batch, points := copyNonZero(rm)
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

// copyNonZero deep-copies rm, leaving out zero deltas: series that did not
// move are observed every interval but carry nothing.
func copyNonZero(rm *metricdata.ResourceMetrics) (*metricdata.ResourceMetrics, int) {
	out := &metricdata.ResourceMetrics{Resource: rm.Resource}
	points := 0
	for _, sm := range rm.ScopeMetrics {
		var metrics []metricdata.Metrics
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue // track's own provider only has int64 counters
			}
			var dps []metricdata.DataPoint[int64]
			for _, dp := range sum.DataPoints {
				if dp.Value != 0 {
					dps = append(dps, metricdata.DataPoint[int64]{
						Attributes: dp.Attributes, StartTime: dp.StartTime, Time: dp.Time, Value: dp.Value,
					})
				}
			}
			if len(dps) == 0 {
				continue
			}
			points += len(dps)
			metrics = append(metrics, metricdata.Metrics{
				Name: m.Name, Description: m.Description, Unit: m.Unit,
				Data: metricdata.Sum[int64]{DataPoints: dps, Temporality: sum.Temporality, IsMonotonic: sum.IsMonotonic},
			})
		}
		if len(metrics) > 0 {
			out.ScopeMetrics = append(out.ScopeMetrics, metricdata.ScopeMetrics{Scope: sm.Scope, Metrics: metrics})
		}
	}
	return out, points
}
