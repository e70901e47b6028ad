package pgrollup

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"github.com/trackhq/track/internal/conventions"
)

// The liveness records (migration 006, the README's "Completeness"):
//
//   - per collector, spans of its flush history (collector_spans): every flush transaction extends
//     the collector's current span to the transaction's now(), and so does a tiny write on a timer
//     (completeness::liveness_interval) when there was nothing to flush, so an idle pipeline still
//     shows as alive. A write later than completeness::stale_after after the span's end starts a
//     new span; the time between is a gap unless another collector covered it.
//   - per source (service.name, service.instance.id of a pushed request's resource, also of a
//     request without data points), first and last seen (source_seen). Writes are bounded: a
//     source's row is written again only when it was seen more than completeness::source_resolution
//     after its last write, so a source costs one row write per resolution, not one per flush.

// flushLiveness is how often, at most, a flush records the collector's liveness (it always
// records the sources waiting).
const flushLiveness = time.Second

// maxSources bounds the sources remembered in memory (those waiting for a write, and those
// written, with when). Past it, the written ones are forgotten (and written again when next seen)
// and new sources wait for the next write: a sender inventing instance ids cannot grow memory.
const maxSources = 100_000

// source is one sending resource: its service.name and service.instance.id ("" when missing), cut
// to maxKeyBytes each (they are the key of source_seen's btree index).
type source struct {
	service, instance string
}

// liveness holds the collector's identity and the sources waiting to be written. Its methods are
// safe for concurrent use: note is called by pushes, the rest by the flusher goroutine.
type liveness struct {
	collector  string
	lateness   time.Duration
	staleAfter time.Duration
	resolution time.Duration

	mu sync.Mutex
	// seen holds the latest time each source was seen since it was last written.
	seen map[source]time.Time
	// written holds when each source's row was last written.
	written map[source]time.Time
	// last is when the collector's liveness was last committed.
	last time.Time
}

func newLiveness(cfg CompletenessConfig, set component.TelemetrySettings) *liveness {
	return &liveness{
		collector:  collectorID(set.Resource),
		lateness:   cfg.Lateness,
		staleAfter: cfg.StaleAfter,
		resolution: cfg.SourceResolution,
		seen:       make(map[source]time.Time),
		written:    make(map[source]time.Time),
	}
}

// collectorID returns the collector's own service.instance.id, from the resource of its
// telemetry (the Collector sets a random UUID unless configured), or a new UUID without one.
func collectorID(res pcommon.Resource) string {
	if v, ok := res.Attributes().Get(conventions.ServiceInstanceID); ok && v.AsString() != "" {
		var r repairs
		return r.text(v.AsString(), maxKeyBytes)
	}
	return uuid.NewString()
}

// note remembers the sources of the resources each yields, seen at now: a source waits for the
// next write unless its row was written at most completeness::source_resolution before now.
func (l *liveness) note(now time.Time, each func(yield func(pcommon.Resource))) {
	l.mu.Lock()
	defer l.mu.Unlock()
	each(func(res pcommon.Resource) {
		var src source
		var r repairs
		if v, ok := res.Attributes().Get(conventions.ServiceName); ok {
			src.service = r.text(v.AsString(), maxKeyBytes)
		}
		if v, ok := res.Attributes().Get(conventions.ServiceInstanceID); ok {
			src.instance = r.text(v.AsString(), maxKeyBytes)
		}
		if t, ok := l.seen[src]; ok {
			if now.After(t) {
				l.seen[src] = now
			}
			return
		}
		if w, ok := l.written[src]; (ok && now.Sub(w) <= l.resolution) || len(l.seen) >= maxSources {
			return
		}
		l.seen[src] = now
	})
}

// sourceRows are the arrays of the sources upsert.
type sourceRows struct {
	services, instances []string
	times               []time.Time
}

// take returns the sources waiting for a write and forgets them; after a failed write, restore
// puts them back.
func (l *liveness) take() sourceRows {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.seen)
	if n == 0 {
		return sourceRows{}
	}
	r := sourceRows{make([]string, 0, n), make([]string, 0, n), make([]time.Time, 0, n)}
	for src, t := range l.seen {
		r.services = append(r.services, src.service)
		r.instances = append(r.instances, src.instance)
		r.times = append(r.times, t)
	}
	clear(l.seen)
	return r
}

// restore puts back the sources of a write that failed.
func (l *liveness) restore(r sourceRows) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range r.services {
		src := source{r.services[i], r.instances[i]}
		if t, ok := l.seen[src]; (!ok && len(l.seen) < maxSources) || (ok && r.times[i].After(t)) {
			l.seen[src] = r.times[i]
		}
	}
}

// due reports whether a flush at now should record the liveness: sources wait for a write, or the
// liveness was last committed at least every before now. One lock for both (it runs every flush).
func (l *liveness) due(now time.Time, every time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen) > 0 || now.Sub(l.last) >= every
}

// sinceLast returns how long before now the liveness was last committed.
func (l *liveness) sinceLast(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.last)
}

// committed records that the liveness and the sources r were committed, the liveness at now (the
// wall clock).
func (l *liveness) committed(now time.Time, r sourceRows) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = now
	if len(l.written)+len(r.services) > maxSources {
		clear(l.written)
	}
	for i := range r.services {
		l.written[source{r.services[i], r.instances[i]}] = r.times[i]
	}
}

// queue adds the liveness records to b: the collector's span, and the sources in r.
func (l *liveness) queue(b *pgx.Batch, sqls *schema.Statements, r sourceRows) {
	b.Queue(sqls.RecordLiveness, l.collector, l.lateness, l.staleAfter)
	if len(r.services) > 0 {
		b.Queue(sqls.UpsertSources, r.services, r.instances, r.times)
	}
}

// writeLiveness records the collector's liveness, and the sources waiting, when nothing was
// flushed for completeness::liveness_interval. It is called by the flusher goroutine.
func (e *rollupExporter) writeLiveness(ctx context.Context) error {
	// The wall clock, as Postgres' now() that the records hold (not e.now, which tests shift).
	if e.live.sinceLast(time.Now()) < e.cfg.Completeness.LivenessInterval || !e.ready.Load() {
		return nil
	}
	return e.recordLiveness(ctx)
}

// recordLiveness writes the liveness records in one batch (an implicit transaction).
func (e *rollupExporter) recordLiveness(ctx context.Context) error {
	r := e.live.take()
	b := &pgx.Batch{}
	e.live.queue(b, &e.sqls, r)
	if err := e.pool.SendBatch(ctx, b).Close(); err != nil {
		e.live.restore(r)
		return fmt.Errorf("recording liveness: %w", err)
	}
	e.live.committed(time.Now(), r)
	return nil
}
