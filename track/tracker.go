package track

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
)

// Tracker counts named events and exports them. The package-level functions
// use a default Tracker; New makes independent ones, for tests and for
// services that need several configurations. A Tracker is safe for
// concurrent use, and none of its methods panic.
type Tracker struct {
	reg      *registry
	refusals refusals
	stats    exportStats

	mu   sync.Mutex
	pipe *pipeline
	live atomic.Pointer[pipeline] // pipe, for readers that must not lock
}

func newTracker(seriesLimit int) *Tracker {
	t := &Tracker{}
	t.refusals.setHandler(otel.Handle)
	t.reg = newRegistry(seriesLimit, &t.refusals)
	return t
}

// New returns a Tracker exporting over OTLP as opts and the OTEL_*
// environment variables say. It does not wait for the collector: exports
// that fail are kept in the backlog. It returns an error wrapping
// ErrInvalidOption for an option or variable it cannot use.
func New(ctx context.Context, opts ...Option) (*Tracker, error) {
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	t := newTracker(cfg.seriesLimit)
	if err := t.start(ctx, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tracker) start(ctx context.Context, cfg config) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pipe != nil {
		return ErrAlreadyStarted
	}
	t.refusals.setHandler(cfg.errorHandler)
	p, err := newPipeline(ctx, cfg, t.reg, &t.stats, &t.refusals)
	if err != nil {
		return err
	}
	if p.provider != nil {
		t.reg.attach(cfg.seriesLimit, nil) // the producer collects
	} else {
		t.reg.attach(cfg.seriesLimit, p.register)
	}
	p.emittedAtStart = t.stats.eventsEmitted.Load()
	p.settledAtStart = t.stats.events.exported.Load() + t.stats.events.dropped.Load()
	t.pipe = p
	t.live.Store(p)
	return nil
}

// Shutdown exports what was counted since the last export, then keeps
// sending the backlog until it is empty or ctx ends; points still undelivered
// then are counted as dropped and the returned error wraps
// ErrBacklogDropped. Counts made after Shutdown are kept in memory but not
// exported. Calling Shutdown again does nothing.
func (t *Tracker) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pipe
	if p == nil {
		return nil
	}
	t.pipe = nil
	t.live.Store(nil)
	err := p.shutdown(ctx)
	t.reg.detach()
	// Whatever was emitted but neither exported nor dropped by the backlog
	// was dropped by the logs SDK's batch processor (its queue was full).
	emitted := t.stats.eventsEmitted.Load() - p.emittedAtStart
	settled := t.stats.events.exported.Load() + t.stats.events.dropped.Load() - p.settledAtStart
	if emitted > settled {
		t.stats.events.dropped.Add(emitted - settled)
	}
	if err != nil {
		return fmt.Errorf("shutting down track: %w", err)
	}
	return nil
}

// Increment adds one to the counter name with the given attributes. It never
// blocks and never panics; an invalid name is refused and counted in Stats.
func (t *Tracker) Increment(name string, attrs ...attribute.KeyValue) {
	// Add's body with the constant 1, written out rather than calling a
	// shared function: that call and the test of n were a large share of a
	// 10 ns budget (issue 15: Increment stays within its cost before
	// forgetting existed; see BENCHMARKS.md).
	c := t.reg.cached(name)
	if c == nil {
		if c = t.reg.lookupSlow(name); c == nil {
			return // refused and counted
		}
	}
	var s *series
	if len(attrs) == 0 {
		s = c.plain.Load()
	}
	if s == nil {
		s = c.seriesFor(attrs)
	}
	// Add returns the new value; less 1 it is the value before the add,
	// whose sign bit marks a forgotten series (retiredBit). The compiler
	// tests the register the LOCK XADD left it in, before unpinning, with
	// the usual case first, so that it falls through.
	if s.cell(procPin()).Add(1)-1 >= 0 {
		procUnpin()
		return
	}
	procUnpin()
	s.landed(1) // forgotten meanwhile: counted again on the live series
}

// Add adds n to the counter name with the given attributes. It never blocks
// and never panics; a negative n or an invalid name is refused and counted
// in Stats.
func (t *Tracker) Add(name string, n int64, attrs ...attribute.KeyValue) {
	if n < 0 {
		t.refuseNegative(name, n)
		return
	}
	// The name from its call-site cache, and its series without attributes
	// if it has one; else the slow path.
	c := t.reg.cached(name)
	if c == nil {
		if c = t.reg.lookupSlow(name); c == nil {
			return // refused and counted
		}
	}
	var s *series
	if len(attrs) == 0 {
		s = c.plain.Load()
	}
	if s == nil {
		s = c.seriesFor(attrs)
	}
	// Test the result before unpinning, while it is still in a register,
	// with the usual case first, so that it falls through.
	if s.cell(procPin()).Add(n) >= n {
		procUnpin()
		return
	}
	procUnpin()
	s.landed(n) // forgotten meanwhile: counted again on the live series
}

// refuseNegative refuses Add(name, n) for a negative n.
func (t *Tracker) refuseNegative(name string, n int64) {
	t.refusals.refuse(fmt.Errorf("%w: Add(%q, %d)", ErrNegative, name, n))
}

// Counter returns a handle bound to one (name, attributes) series, whose
// Increment and Add skip every lookup. When the series is forgotten after
// idling (see WithIdleIntervals), the handle attaches to a new one on its
// next use, and no count is lost. A handle for an invalid name refuses
// every call. Handles are safe for concurrent use.
func (t *Tracker) Counter(name string, attrs ...attribute.KeyValue) *CounterHandle {
	h := &CounterHandle{t: t, name: name, set: attribute.NewSet(slices.Clone(attrs)...)}
	if validateName(name) != nil {
		return h // refuses each call
	}
	if c := t.reg.lookup(name); c != nil {
		h.bind(c.seriesFor(attrs))
	}
	return h
}

// Stats reports what the tracker exported, held, dropped and refused, and
// how many series it keeps.
func (t *Tracker) Stats() Statistics {
	return Statistics{
		PointsExported:     t.stats.points.exported.Load(),
		ExportFailures:     t.stats.failures.Load(),
		PointsInBacklog:    t.stats.points.held.Load(),
		PointsDropped:      t.stats.points.dropped.Load(),
		EventsExported:     t.stats.events.exported.Load(),
		EventsInBacklog:    t.stats.events.held.Load(),
		EventsDropped:      t.stats.events.dropped.Load(),
		Refused:            t.refusals.count.Load(),
		ActiveSeries:       t.reg.liveSeries.Load(),
		ActiveNames:        t.reg.liveNames.Load(),
		FoldedIntoOverflow: t.reg.foldedIntoOverflow(),
	}
}

// CounterHandle is a counter pre-bound to one attribute set. It is safe for
// concurrent use; a nil or zero handle refuses nothing and does nothing.
type CounterHandle struct {
	s    atomic.Pointer[series] // nil until attached
	t    *Tracker
	name string
	set  attribute.Set
}

// Increment adds one. It never blocks and never panics.
func (h *CounterHandle) Increment() {
	if h == nil {
		return
	}
	s := h.s.Load()
	if s == nil {
		h.attachAndAdd(1)
		return
	}
	// The add, inlined by hand for the tightest loops; the test is
	// Tracker.Increment's.
	if s.cell(procPin()).Add(1)-1 >= 0 {
		procUnpin()
		return
	}
	procUnpin()
	h.landed(s, 1) // forgotten meanwhile: attach to the live series
}

// Add adds n; a negative n is refused and counted. It never blocks and never
// panics.
func (h *CounterHandle) Add(n int64) {
	if h == nil || h.t == nil {
		return
	}
	if n < 0 {
		h.t.refuseNegative(h.name, n)
		return
	}
	s := h.s.Load()
	if s == nil {
		h.attachAndAdd(n)
		return
	}
	if s.cell(procPin()).Add(n) >= n {
		procUnpin()
		return
	}
	procUnpin()
	h.landed(s, n)
}

// landed handles an add of n whose cell came back below n: see
// series.landed. The handle finds its series again by its own attributes,
// not by those of s, which may be the overflow series: once forgetting made
// room, the handle gets a series of its own.
func (h *CounterHandle) landed(s *series, n int64) {
	if !s.retired.Load() {
		return // a live total past 2^63: counted
	}
	h.t.reg.recounted.Add(1)
	h.attachAndAdd(n)
}

// attachAndAdd binds the handle to the live series of its name and
// attributes and adds n there. A name refused (invalid, or too many names)
// is counted as a refusal.
func (h *CounterHandle) attachAndAdd(n int64) {
	if h.t == nil {
		return // the zero CounterHandle, not made by Counter: does nothing
	}
	for {
		// Without the lock-free tables: they may still hold a series being
		// forgotten, which would only be found again.
		s := h.t.reg.seriesOf(h.name, h.set)
		h.bind(s)
		if s == discard {
			return // refused and counted
		}
		if s.cell(procPin()).Add(n) >= n || !s.retired.Load() {
			procUnpin()
			return
		}
		procUnpin() // forgotten again meanwhile: its final read missed n
	}
}

// bind attaches the handle to s; after discard (its name was refused when
// its series was found again), the next call tries again.
func (h *CounterHandle) bind(s *series) {
	if s == discard {
		s = nil
	}
	h.s.Store(s)
}
