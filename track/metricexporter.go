package track

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/trackhq/track/internal/conventions"
)

// metricExporter puts a backlog in front of the OTLP metric exporter, and
// sends a heartbeat for an interval with nothing to send.
type metricExporter struct {
	next    sdkmetric.Exporter
	backlog *backlog[*metricdata.ResourceMetrics]

	mu   sync.Mutex
	last time.Time // the previous Export, the start of a heartbeat's window
}

var _ sdkmetric.Exporter = (*metricExporter)(nil)

func newMetricExporter(next sdkmetric.Exporter, limit int, stats *exportStats, report func(error)) *metricExporter {
	return &metricExporter{next: next, last: time.Now(), backlog: &backlog[*metricdata.ResourceMetrics]{
		send: next.Export, limit: limit, what: "points", flow: &stats.points, failures: &stats.failures, report: report,
		heartbeats: true,
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
//
// When rm has no points and nothing is held, a heartbeat goes in their
// place (see heartbeat); it is never held, retried or counted as exported.
func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	now := time.Now()
	e.mu.Lock()
	start := e.last
	e.last = now
	e.mu.Unlock()
	batch, points := takeBatch(rm)
	if points == 0 {
		batch = heartbeat(rm, start, now)
	}
	e.backlog.push(ctx, batch, points)
	return nil
}

// heartbeat returns the request that tells the collector a process is alive
// when it counted nothing over [start, end]: rm's resource and a single
// point of conventions.Heartbeat, a monotonic delta sum of 0 with no
// attributes. A request with only the resource would be smaller, but the
// collector's OTLP receiver drops a request without data points before any
// processor or exporter sees it.
func heartbeat(rm *metricdata.ResourceMetrics, start, end time.Time) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{
		Resource: rm.Resource,
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: scopeName},
			Metrics: []metricdata.Metrics{{
				Name: conventions.Heartbeat,
				Data: metricdata.Sum[int64]{
					DataPoints:  []metricdata.DataPoint[int64]{{Attributes: *attribute.EmptySet(), StartTime: start, Time: end}},
					Temporality: metricdata.DeltaTemporality,
					IsMonotonic: true,
				},
			}},
		}},
	}
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
