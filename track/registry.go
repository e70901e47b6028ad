package track

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
)

const (
	// nameCacheBits sizes the direct-mapped cache that finds a counter by the
	// address of its name, so string literals are found without hashing.
	nameCacheBits = 10
	nameCacheSize = 1 << nameCacheBits

	// aliasesPerCounter bounds how many distinct string addresses of one name
	// are cached (and so kept alive) per counter.
	aliasesPerCounter = 8

	// maxNames bounds the distinct names a tracker accepts, so a name built
	// from unbounded input cannot grow memory without limit.
	maxNames = 10000

	// nodesPerSeries bounds the fast-path lookup nodes per series: one per
	// distinct order in which callers pass the same attributes.
	nodesPerSeries = 4
)

var overflowAttrs = attribute.NewSet(attribute.Bool("otel.metric.overflow", true))

// nameAlias ties one string (and so one address) to its counter. Keeping the
// string referenced keeps its memory from being reused by another string,
// which is what makes an address comparison a valid equality test.
type nameAlias struct {
	name string
	c    *counter
}

// registry holds every counter of a tracker. Lookups are lock-free; creating
// counters and series takes locks.
type registry struct {
	cache   [nameCacheSize]atomic.Pointer[nameAlias]
	pending [nameCacheSize]atomic.Uintptr

	byName atomic.Pointer[map[string]*counter] // copy-on-write, under mu

	mu          sync.Mutex
	counters    []*counter
	seriesLimit int
	onCounter   func(*counter) // set while a pipeline is attached

	refusals *refusals
}

func newRegistry(seriesLimit int, r *refusals) *registry {
	reg := &registry{seriesLimit: seriesLimit, refusals: r}
	m := map[string]*counter{}
	reg.byName.Store(&m)
	return reg
}

func cacheIndex(p *byte) uintptr {
	return (uintptr(unsafe.Pointer(p)) * 0x9e3779b97f4a7c15) >> (64 - nameCacheBits)
}

// lookup returns the counter for name, creating it on first use, or nil when
// the name is refused.
func (r *registry) lookup(name string) *counter {
	p := unsafe.StringData(name)
	i := cacheIndex(p)
	if a := r.cache[i].Load(); a != nil && unsafe.StringData(a.name) == p && len(a.name) == len(name) {
		return a.c
	}
	return r.lookupSlow(name, i)
}

func (r *registry) lookupSlow(name string, i uintptr) *counter {
	c := (*r.byName.Load())[name]
	if c == nil {
		if c = r.create(name); c == nil {
			return nil
		}
	}
	// Cache an address only once it misses twice in a row in its slot: names
	// built at run time get a new address per call and would only churn it.
	p := uintptr(unsafe.Pointer(unsafe.StringData(name)))
	if r.pending[i].Swap(p) == p {
		if a := c.alias(name); a != nil {
			r.cache[i].Store(a)
		}
	}
	return c
}

func (r *registry) create(name string) *counter {
	if err := validateName(name); err != nil {
		r.refusals.refuse(err)
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.byName.Load()
	if c := old[name]; c != nil {
		return c
	}
	if len(old) >= maxNames {
		r.refusals.refuse(fmt.Errorf("%w: %d names already counted, %q refused", ErrTooManyNames, maxNames, name))
		return nil
	}
	c := newCounter(strings.Clone(name), r.seriesLimit)
	m := make(map[string]*counter, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[c.name] = c
	r.byName.Store(&m)
	r.counters = append(r.counters, c)
	if r.onCounter != nil {
		r.onCounter(c)
	}
	return c
}

// attach calls register for every counter, now and as they are created,
// until detach.
func (r *registry) attach(register func(*counter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onCounter = register
	for _, c := range r.counters {
		register(c)
	}
}

// detach stops registering counters and records what the detached pipeline
// reported, so that a later pipeline reports only what came after.
func (r *registry) detach() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onCounter = nil
	for _, c := range r.counters {
		c.mu.Lock()
		for _, s := range c.list {
			s.base = s.observed
		}
		c.mu.Unlock()
	}
}

// counter is one name and its series.
type counter struct {
	name  string
	plain atomic.Pointer[series] // the series without attributes
	table atomic.Pointer[seriesTable]

	mu       sync.Mutex
	sets     map[attribute.Distinct]*series
	list     []*series // every series, in creation order, for collection
	limit    int
	overflow *series
	nodes    int
	aliases  []*nameAlias
}

// seriesTable is an open-addressing table from attribute hash to series,
// read without locks and replaced whole when it grows.
type seriesTable struct {
	mask  uint64
	slots []atomic.Pointer[seriesNode]
}

type seriesNode struct {
	hash uint64
	kvs  []attribute.KeyValue // in the order a caller passed them
	s    *series
}

func newCounter(name string, limit int) *counter {
	c := &counter{name: name, sets: map[attribute.Distinct]*series{}, limit: limit}
	c.aliases = append(c.aliases, &nameAlias{name: name, c: c})
	c.table.Store(&seriesTable{mask: 7, slots: make([]atomic.Pointer[seriesNode], 8)})
	return c
}

func (c *counter) alias(name string) *nameAlias {
	p := unsafe.StringData(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.aliases {
		if unsafe.StringData(a.name) == p && len(a.name) == len(name) {
			return a
		}
	}
	if len(c.aliases) >= aliasesPerCounter {
		return nil
	}
	a := &nameAlias{name: name, c: c}
	c.aliases = append(c.aliases, a)
	return a
}

// seriesFor returns the series for attrs, creating it on first use.
func (c *counter) seriesFor(attrs []attribute.KeyValue) *series {
	if len(attrs) == 0 {
		if s := c.plain.Load(); s != nil {
			return s
		}
		return c.slowSeries(nil, 0, false)
	}
	h, ok := hashAttrs(attrs)
	if ok {
		t := c.table.Load()
		for i := h & t.mask; ; i = (i + 1) & t.mask {
			n := t.slots[i].Load()
			if n == nil {
				break
			}
			if n.hash == h && sameAttrs(n.kvs, attrs) {
				return n.s
			}
		}
	}
	return c.slowSeries(attrs, h, ok)
}

func (c *counter) slowSeries(attrs []attribute.KeyValue, h uint64, hashed bool) *series {
	// NewSet sorts its argument in place: give it a copy so the caller's
	// slice is left alone and does not escape.
	set := attribute.NewSet(slices.Clone(attrs)...)
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sets[set.Equivalent()]
	if s == nil {
		if len(c.sets) >= c.limit {
			s = c.overflowSeries()
		} else {
			s = newSeries(set)
			c.sets[set.Equivalent()] = s
			c.list = append(c.list, s)
		}
	}
	if len(attrs) == 0 {
		c.plain.Store(s)
	} else if hashed && c.nodes < nodesPerSeries*(c.limit+1) {
		c.insertNode(&seriesNode{hash: h, kvs: slices.Clone(attrs), s: s})
	}
	return s
}

func (c *counter) overflowSeries() *series {
	if c.overflow == nil {
		c.overflow = c.sets[overflowAttrs.Equivalent()]
		if c.overflow == nil {
			c.overflow = newSeries(overflowAttrs)
			c.sets[overflowAttrs.Equivalent()] = c.overflow
			c.list = append(c.list, c.overflow)
		}
	}
	return c.overflow
}

// insertNode adds n to the table, growing it to keep the load under half.
// Called with c.mu held.
func (c *counter) insertNode(n *seriesNode) {
	t := c.table.Load()
	for i := n.hash & t.mask; ; i = (i + 1) & t.mask {
		old := t.slots[i].Load()
		if old == nil {
			break
		}
		if old.hash == n.hash && sameAttrs(old.kvs, n.kvs) {
			return // another caller got here first
		}
	}
	if uint64(c.nodes+1)*2 > t.mask+1 {
		grown := &seriesTable{mask: t.mask*2 + 1, slots: make([]atomic.Pointer[seriesNode], (t.mask+1)*2)}
		for i := range t.slots {
			if old := t.slots[i].Load(); old != nil {
				grown.put(old)
			}
		}
		c.table.Store(grown)
		t = grown
	}
	t.put(n)
	c.nodes++
}

func (t *seriesTable) put(n *seriesNode) {
	for i := n.hash & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i].Load() == nil {
			t.slots[i].Store(n)
			return
		}
	}
}
