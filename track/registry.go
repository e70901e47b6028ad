package track

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/trackhq/track/internal/conventions"
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

var overflowAttrs = attribute.NewSet(attribute.Bool(conventions.Overflow, true))

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
	nameLimit   int            // maxNames; lower in tests
	onCounter   func(*counter) // set while a pipeline is attached

	refusals  *refusals
	overflows rateLimit // reports of a name's first overflow

	// What Stats reports: series and names alive now, and the values
	// counted into overflow series since forgotten.
	liveSeries        atomic.Int64
	liveNames         atomic.Int64
	overflowForgotten atomic.Uint64

	// For tests: adds that landed on a forgotten series and were counted
	// again on a live one, and series whose final read at forgetting found
	// adds made after the read that judged them idle.
	recounted atomic.Uint64
	raced     atomic.Uint64
}

func newRegistry(seriesLimit int, r *refusals) *registry {
	reg := &registry{seriesLimit: seriesLimit, nameLimit: maxNames, refusals: r}
	m := map[string]*counter{}
	reg.byName.Store(&m)
	return reg
}

func cacheIndex(p *byte) uintptr {
	return (uintptr(unsafe.Pointer(p)) * 0x9e3779b97f4a7c15) >> (64 - nameCacheBits)
}

// lookup returns the counter for name, creating it on first use, or nil when
// the name is refused. The counter may have been forgotten since: its
// series then refuse to count, and callers find the name again with find.
func (r *registry) lookup(name string) *counter {
	if c := r.cached(name); c != nil {
		return c
	}
	return r.lookupSlow(name)
}

// cached returns the counter the call-site cache holds for name's address,
// or nil. It is small enough to be inlined.
func (r *registry) cached(name string) *counter {
	p := unsafe.StringData(name)
	if a := r.cache[cacheIndex(p)].Load(); a != nil && unsafe.StringData(a.name) == p && len(a.name) == len(name) {
		return a.c
	}
	return nil
}

// lookupSlow is lookup after a miss in the call-site cache.
func (r *registry) lookupSlow(name string) *counter {
	c := r.find(name)
	if c == nil {
		return nil
	}
	// Cache an address only once it misses twice in a row in its slot: names
	// built at run time get a new address per call and would only churn it.
	p := unsafe.StringData(name)
	i := cacheIndex(p)
	if r.pending[i].Swap(uintptr(unsafe.Pointer(p))) == uintptr(unsafe.Pointer(p)) {
		if a := c.alias(name); a != nil {
			r.cache[i].Store(a)
			// The counter may have been forgotten between alias and Store,
			// after its slots were cleared: clear this one again.
			if c.retired.Load() {
				r.cache[i].CompareAndSwap(a, nil)
			}
		}
	}
	return c
}

// find returns the live counter for name, creating it if needed, or nil
// when the name is refused. It skips the cache.
func (r *registry) find(name string) *counter {
	if c := (*r.byName.Load())[name]; c != nil && !c.retired.Load() {
		return c
	}
	return r.create(name)
}

func (r *registry) create(name string) *counter {
	if err := validateName(name); err != nil {
		r.refusals.refuse(err)
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.byName.Load()
	prev := old[name]
	if prev != nil && !prev.retired.Load() {
		return prev
	}
	if prev == nil && len(old) >= r.nameLimit {
		r.refusals.refuse(fmt.Errorf("%w: %d names already counted, %q refused", ErrTooManyNames, r.nameLimit, name))
		return nil
	}
	c := newCounter(strings.Clone(name), r)
	m := make(map[string]*counter, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[c.name] = c // replaces a forgotten counter of that name
	r.byName.Store(&m)
	r.counters = append(r.counters, c)
	r.liveNames.Add(1)
	if r.onCounter != nil {
		r.onCounter(c)
	}
	return c
}

// attach calls register for every counter, now and as they are created,
// until detach. A nil register only records the series limit.
func (r *registry) attach(seriesLimit int, register func(*counter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seriesLimit = seriesLimit
	r.onCounter = register
	if register == nil {
		return
	}
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
	reg   *registry
	plain atomic.Pointer[series] // the series without attributes
	table atomic.Pointer[seriesTable]

	// retired is set, under mu, when the collector forgets the counter: it
	// then has no series and creates none, and callers find the name again.
	retired atomic.Bool

	mu       sync.Mutex
	sets     map[attribute.Distinct]*series
	deleted  int       // sets deleted since the map was last rebuilt
	list     []*series // every live series, in creation order, for collection
	limit    int
	overflow *series
	nodes    int // live nodes in table
	tombs    int // slots of table whose node was removed
	aliases  []*nameAlias
}

// seriesTable is an open-addressing table from attribute hash to series,
// read without locks. Removed nodes leave a tombstone; the table is replaced
// whole when it grows, shrinks or fills with tombstones.
type seriesTable struct {
	mask  uint64
	slots []atomic.Pointer[seriesNode]
}

type seriesNode struct {
	hash uint64
	kvs  []attribute.KeyValue // in the order a caller passed them
	s    *series
}

// tombstone fills the slot of a removed node: lookups probe past it, and it
// matches no attributes (kvs is empty, and only non-empty sets are hashed).
var tombstone = &seriesNode{}

const minTableSize = 8

func newTable(size int) *seriesTable {
	return &seriesTable{mask: uint64(size - 1), slots: make([]atomic.Pointer[seriesNode], size)}
}

func newCounter(name string, r *registry) *counter {
	c := &counter{name: name, reg: r, sets: map[attribute.Distinct]*series{}, limit: r.seriesLimit}
	c.aliases = append(c.aliases, &nameAlias{name: name, c: c})
	c.table.Store(newTable(minTableSize))
	return c
}

func (c *counter) alias(name string) *nameAlias {
	p := unsafe.StringData(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retired.Load() {
		return nil
	}
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

// seriesFor returns the series for attrs, creating it on first use (on the
// name's new counter if c was forgotten, discard if the name is then
// refused). The series may be forgotten by the time the caller adds to it:
// the add then sees the mark, see series.landed.
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
	if c.retired.Load() {
		// Forgotten: the name's new counter has the live series.
		c.mu.Unlock()
		return c.reg.seriesOf(c.name, set)
	}
	s := c.seriesOfLocked(set)
	if len(attrs) == 0 {
		c.plain.Store(s)
	} else if hashed && c.nodes < nodesPerSeries*(c.limit+1) {
		c.insertNode(&seriesNode{hash: h, kvs: slices.Clone(attrs), s: s})
	}
	c.mu.Unlock()
	return s
}

// seriesOf returns the live series of name and set, creating the counter
// and the series if needed, without the lock-free tables (which may still
// hold series being forgotten); discard when the name is refused.
func (r *registry) seriesOf(name string, set attribute.Set) *series {
	for {
		c := r.find(name)
		if c == nil {
			return discard
		}
		c.mu.Lock()
		var s *series
		if !c.retired.Load() {
			s = c.seriesOfLocked(set)
		}
		c.mu.Unlock()
		if s != nil {
			return s
		}
	}
}

// seriesOfLocked returns the series of set, creating it, or the overflow
// series when c is at its limit. Called with c.mu held, c not retired.
func (c *counter) seriesOfLocked(set attribute.Set) *series {
	if set.Equivalent() == overflowAttrs.Equivalent() {
		return c.overflowSeries()
	}
	if s := c.sets[set.Equivalent()]; s != nil {
		return s
	}
	if c.activeSets() >= c.limit {
		return c.overflowSeries()
	}
	return c.newSeries(set)
}

// activeSets is the number of c's series, less its overflow series. Called
// with c.mu held.
func (c *counter) activeSets() int {
	if c.overflow != nil {
		return len(c.sets) - 1
	}
	return len(c.sets)
}

// newSeries creates the series of set. Called with c.mu held.
func (c *counter) newSeries(set attribute.Set) *series {
	s := newSeries(c, set)
	c.sets[set.Equivalent()] = s
	c.list = append(c.list, s)
	c.reg.liveSeries.Add(1)
	return s
}

// overflowSeries returns the series further attribute sets fold into, and
// reports the name's first overflow since its overflow series was last
// forgotten. Called with c.mu held.
func (c *counter) overflowSeries() *series {
	if c.overflow == nil {
		c.overflow = c.newSeries(overflowAttrs)
		c.reg.reportOverflow(c)
	}
	return c.overflow
}

// insertNode adds n to the table, replacing the table when the load of
// nodes and tombstones would pass half. Called with c.mu held.
func (c *counter) insertNode(n *seriesNode) {
	t := c.table.Load()
	free := -1
	for i := n.hash & t.mask; ; i = (i + 1) & t.mask {
		old := t.slots[i].Load()
		if old == nil {
			if free < 0 {
				free = int(i)
			}
			break
		}
		if old == tombstone {
			if free < 0 {
				free = int(i)
			}
			continue
		}
		if old.hash == n.hash && sameAttrs(old.kvs, n.kvs) {
			return // another caller got here first
		}
	}
	n.s.nodes = append(n.s.nodes, n)
	c.nodes++
	if t.slots[free].Load() == tombstone {
		c.tombs--
		t.slots[free].Store(n)
		return
	}
	if uint64(c.nodes+c.tombs)*2 > t.mask+1 {
		c.rebuildTable(n)
		return
	}
	t.slots[free].Store(n)
}

// rebuildTable replaces the table by one holding its live nodes and extra,
// sized so that the live nodes fill a quarter of it at most, and drops the
// tombstones. Called with c.mu held.
func (c *counter) rebuildTable(extra *seriesNode) {
	size := minTableSize
	for size < 4*c.nodes {
		size <<= 1
	}
	t, grown := c.table.Load(), newTable(size)
	for i := range t.slots {
		if old := t.slots[i].Load(); old != nil && old != tombstone {
			grown.put(old)
		}
	}
	if extra != nil {
		grown.put(extra)
	}
	c.tombs = 0
	c.table.Store(grown)
}

func (t *seriesTable) put(n *seriesNode) {
	for i := n.hash & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i].Load() == nil {
			t.slots[i].Store(n)
			return
		}
	}
}

// removeNodes replaces the nodes of s by tombstones. Called with c.mu held.
func (c *counter) removeNodes(s *series) {
	t := c.table.Load()
	for _, n := range s.nodes {
		for i := n.hash & t.mask; ; i = (i + 1) & t.mask {
			old := t.slots[i].Load()
			if old == nil {
				break // not in this table (cannot happen: rebuilds keep every node)
			}
			if old == n {
				t.slots[i].Store(tombstone)
				c.nodes--
				c.tombs++
				break
			}
		}
	}
	s.nodes = nil
}

// reportOverflow reports that c reached its series limit, at most once per
// reportEvery across names.
func (r *registry) reportOverflow(c *counter) {
	ok, missed := r.overflows.allow()
	if !ok {
		return
	}
	err := fmt.Errorf("%w: %q has %d active attribute sets, its limit; further sets fold into one series with otel.metric.overflow=true until some are forgotten",
		ErrSeriesOverflow, c.name, c.limit)
	if missed > 0 {
		err = fmt.Errorf("%w (and %d more names overflowed since the last report)", err, missed)
	}
	r.refusals.report(err)
}

// foldedIntoOverflow returns the sum of the values counted into overflow
// series, live and forgotten.
func (r *registry) foldedIntoOverflow() uint64 {
	r.mu.Lock() // forgetCounters clears the list's old backing array
	defer r.mu.Unlock()
	var total uint64
	for _, c := range r.counters {
		c.mu.Lock()
		if c.overflow != nil {
			total += uint64(c.overflow.total())
		}
		c.mu.Unlock()
	}
	return total + r.overflowForgotten.Load()
}
