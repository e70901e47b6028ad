package track

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// shutdownRetryEvery paces the attempts to drain the backlog at shutdown.
const shutdownRetryEvery = 100 * time.Millisecond

// backlogExporter keeps every export that failed and sends them again, oldest
// first and one request each, before anything newer. Each held export keeps
// its own start and end times: merging them would put a long outage's counts
// into one interval, and re-sending the exact same request lets a collector
// that did receive it recognise the duplicate.
type backlogExporter struct {
	next   sdkmetric.Exporter
	limit  int
	stats  *exportStats
	report func(error)

	mu    sync.Mutex
	queue []heldExport
}

type heldExport struct {
	rm     *metricdata.ResourceMetrics
	points int
}

var _ sdkmetric.Exporter = (*backlogExporter)(nil)

func (e *backlogExporter) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	return e.next.Temporality(k)
}

func (e *backlogExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return e.next.Aggregation(k)
}

// Export queues a copy of rm (the SDK reuses rm after Export returns) and
// sends the queue. A failure is reported to the error handler, not to the
// SDK, and the export stays queued.
func (e *backlogExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	held := copyNonZero(rm)
	e.mu.Lock()
	defer e.mu.Unlock()
	if held.points > 0 {
		e.queue = append(e.queue, held)
		e.stats.backlog.Add(int64(held.points))
	}
	if err := e.drain(ctx); err != nil {
		e.trim()
		e.report(err)
	}
	return nil
}

// drain sends held exports in order until one fails. Called with e.mu held.
func (e *backlogExporter) drain(ctx context.Context) error {
	for len(e.queue) > 0 {
		h := e.queue[0]
		if err := e.next.Export(ctx, h.rm); err != nil {
			e.stats.failures.Add(1)
			return fmt.Errorf("exporting %d points, %d exports held: %w", h.points, len(e.queue), err)
		}
		e.stats.exported.Add(uint64(h.points))
		e.stats.backlog.Add(-int64(h.points))
		e.queue[0] = heldExport{}
		e.queue = e.queue[1:]
	}
	return nil
}

// trim drops the oldest held exports beyond the limit. Called with e.mu held.
func (e *backlogExporter) trim() {
	for len(e.queue) > e.limit {
		e.dropOldest()
	}
}

func (e *backlogExporter) dropOldest() {
	h := e.queue[0]
	e.stats.dropped.Add(uint64(h.points))
	e.stats.backlog.Add(-int64(h.points))
	e.queue[0] = heldExport{}
	e.queue = e.queue[1:]
}

// ForceFlush sends the backlog once.
func (e *backlogExporter) ForceFlush(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.drain(ctx); err != nil {
		return err
	}
	return e.next.ForceFlush(ctx)
}

// Shutdown keeps sending the backlog until it is empty or ctx ends, then
// shuts the OTLP exporter down. Points still held then are dropped.
func (e *backlogExporter) Shutdown(ctx context.Context) error {
	var drainErr error
	for {
		e.mu.Lock()
		drainErr = e.drain(ctx)
		empty := len(e.queue) == 0
		e.mu.Unlock()
		if empty {
			break
		}
		timer := time.NewTimer(shutdownRetryEvery)
		select {
		case <-ctx.Done():
			timer.Stop()
			e.mu.Lock()
			lost := e.stats.backlog.Load()
			for len(e.queue) > 0 {
				e.dropOldest()
			}
			e.mu.Unlock()
			return errors.Join(
				fmt.Errorf("%w: %d points undelivered: %w", ErrBacklogDropped, lost, drainErr),
				e.next.Shutdown(context.WithoutCancel(ctx)),
			)
		case <-timer.C:
		}
	}
	return e.next.Shutdown(ctx)
}

// copyNonZero deep-copies rm, leaving out zero deltas: series that did not
// move are observed every interval but carry nothing.
func copyNonZero(rm *metricdata.ResourceMetrics) heldExport {
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
	return heldExport{rm: out, points: points}
}
