package track

import (
	"context"
	"slices"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// producer hands track's deltas to the SDK's periodic reader, which exports
// them with the provider's resource. Each Produce is one collection: it
// reports what every series counted since the last one, and forgets the
// series and names that stayed idle for idleIntervals collections.
type producer struct {
	reg           *registry
	idleIntervals int

	mu      sync.Mutex
	last    time.Time                     // the end of the last collection, the start of the next window
	scratch []metricdata.DataPoint[int64] // reused between counters and collections
}

var _ sdkmetric.Producer = (*producer)(nil)

// testHookBeforeRetire, when set by a test, runs between the read that
// judges a series idle and its retirement: the window an add can race into.
var testHookBeforeRetire func(*series)

func newProducer(reg *registry, idleIntervals int) *producer {
	return &producer{reg: reg, idleIntervals: idleIntervals, last: time.Now()}
}

// Produce collects. It never fails. Concurrent calls run one at a time.
func (p *producer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	metrics := p.reg.collect(p.idleIntervals, p.last, now, &p.scratch)
	p.last = now
	if len(metrics) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: scopeName}, Metrics: metrics}}, nil
}

// collect returns the non-zero deltas of every counter over [start, end],
// forgets series idle for idleIntervals collections and names left without
// series, and releases the memory they held. Points are gathered in scratch,
// then copied into slices of their exact size, which the caller owns.
func (r *registry) collect(idleIntervals int, start, end time.Time, scratch *[]metricdata.DataPoint[int64]) []metricdata.Metrics {
	r.mu.Lock()
	counters := r.counters
	r.mu.Unlock()

	var metrics []metricdata.Metrics
	forgotten := 0
	for _, c := range counters {
		*scratch = c.collect(idleIntervals, start, end, (*scratch)[:0])
		if len(*scratch) > 0 {
			metrics = append(metrics, metricdata.Metrics{
				Name: c.name,
				Data: metricdata.Sum[int64]{DataPoints: slices.Clone(*scratch), Temporality: metricdata.DeltaTemporality, IsMonotonic: true},
			})
		}
		if c.retired.Load() {
			forgotten++
		}
	}
	if forgotten > 0 {
		r.forgetCounters()
	}
	return metrics
}

// forgetCounters removes the forgotten counters from the registry: the list,
// the name map and the address cache.
func (r *registry) forgetCounters() {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := make([]*counter, 0, len(r.counters))
	for _, c := range r.counters {
		if !c.retired.Load() {
			live = append(live, c)
			continue
		}
		for _, a := range c.aliases {
			r.cache[cacheIndex(unsafe.StringData(a.name))].CompareAndSwap(a, nil)
		}
	}
	clear(r.counters) // drop the references the old backing array holds
	r.counters = live
	old := *r.byName.Load()
	m := make(map[string]*counter, len(live))
	for k, c := range old {
		if !c.retired.Load() {
			m[k] = c
		}
	}
	r.byName.Store(&m)
}

// collect appends c's non-zero deltas to dps and forgets its idle series;
// when none is left, c itself is forgotten.
func (c *counter) collect(idleIntervals int, start, end time.Time, dps []metricdata.DataPoint[int64]) []metricdata.DataPoint[int64] {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.list[:0]
	forgotten := false
	for _, s := range c.list {
		total := s.total()
		if total != s.observed {
			s.idle = 0
		} else {
			s.idle++
		}
		if s.idle >= idleIntervals {
			// An add may land between the read above and the marks:
			// retire's total includes it, and it is reported below.
			if testHookBeforeRetire != nil {
				testHookBeforeRetire(s)
			}
			if final := s.retire(); final != total {
				c.reg.raced.Add(1)
				total = final
			}
			c.forget(s, total)
			forgotten = true
		}
		if total != s.observed {
			dps = append(dps, metricdata.DataPoint[int64]{Attributes: s.attrs, StartTime: start, Time: end, Value: total - s.observed})
			s.observed = total
		}
		if !s.retired.Load() {
			kept = append(kept, s)
		}
	}
	if o := c.overflow; forgotten && o != nil && c.activeSets() < c.limit {
		// Forgetting made room: the sets folded so far may have series of
		// their own again. Forgetting the overflow series sends its callers
		// (table nodes, handles) back to a lookup that gives them one.
		total := o.retire()
		c.forget(o, total)
		if total != o.observed {
			dps = append(dps, metricdata.DataPoint[int64]{Attributes: o.attrs, StartTime: start, Time: end, Value: total - o.observed})
			o.observed = total
		}
		kept = slices.DeleteFunc(kept, func(s *series) bool { return s == o })
	}
	clear(c.list[len(kept):])
	c.list = kept
	if forgotten {
		c.compact()
	}
	if len(c.list) == 0 && !c.retired.Load() {
		c.retired.Store(true)
		c.reg.liveNames.Add(-1)
	}
	return dps
}

// forget removes the retired series s, whose final total is total, from
// c's lookups. Called with c.mu held.
func (c *counter) forget(s *series, total int64) {
	c.removeNodes(s)
	delete(c.sets, s.attrs.Equivalent())
	c.deleted++
	if c.plain.Load() == s {
		c.plain.Store(nil)
	}
	if c.overflow == s {
		c.overflow = nil
		c.reg.overflowForgotten.Add(uint64(total))
	}
	c.reg.liveSeries.Add(-1)
}

// compact gives the memory of forgotten series back once it is large next
// to what is live: Go maps and slices do not shrink by themselves. Called
// with c.mu held.
func (c *counter) compact() {
	if c.deleted > len(c.sets)+minTableSize {
		sets := make(map[attribute.Distinct]*series, len(c.sets))
		for k, s := range c.sets {
			sets[k] = s
		}
		c.sets = sets
		c.deleted = 0
	}
	if cap(c.list) > 4*len(c.list)+minTableSize {
		c.list = slices.Clone(c.list)
	}
	if t := c.table.Load(); c.tombs > c.nodes || (t.mask+1 > minTableSize && uint64(c.nodes)*8 < t.mask+1) {
		c.rebuildTable(nil)
	}
}
