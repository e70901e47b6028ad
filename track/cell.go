package track

import (
	"math"
	"runtime"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
)

// cacheLine is the size the per-processor cells are padded to, so that two
// cores adding to neighbouring cells never fight over one line.
const cacheLine = 64

// maxStripes bounds the cells per series: on machines with more processors,
// several processors share a cell, which costs contention, not correctness.
const maxStripes = 64

type paddedCell struct {
	n atomic.Int64
	_ [cacheLine - 8]byte
}

// stripes is the number of cells per series, a power of two fixed at start.
var stripes = func() int {
	n := 1
	for n < runtime.GOMAXPROCS(0) && n < maxStripes {
		n <<= 1
	}
	return n
}()

// retiredBit marks the cells of a forgotten series. An add returns the
// cell's new value: below the amount added (equivalently, a negative value
// before the add, which is how the constant-1 adds test it) means the bit
// was set before the add, so the collector's final read did not include it
// and the caller must count it again on a live series. Live cells never
// reach the bit (2^63).
const retiredBit = math.MinInt64

// series is one (name, attribute set) stream. Its total is the sum of its
// cells; each cell only grows, so a total read while others add is a valid
// lower bound and successive reads never decrease.
type series struct {
	cells []paddedCell
	// first is &cells[0] and mask len(cells)-1, for cell.
	first *paddedCell
	mask  int
	attrs attributeSet
	c     *counter // nil for discard

	// retired is set, before the cells are marked, when the collector
	// forgets the series; callers whose add lands after the mark re-count.
	retired atomic.Bool

	// nodes are the lookup-table nodes pointing here, and idle the number
	// of collections in a row that found the total unchanged. Both are
	// guarded by the counter's lock.
	nodes []*seriesNode
	idle  int

	// observed is the total last handed to an SDK reader, and base the total
	// already reported by earlier pipelines. Both are only touched by the
	// collection callback or under the registry lock while no pipeline runs.
	observed int64
	base     int64
}

func newSeries(c *counter, attrs attributeSet) *series {
	cells := make([]paddedCell, stripes)
	return &series{cells: cells, first: &cells[0], mask: len(cells) - 1, attrs: attrs, c: c}
}

// cell returns the cell of processor pid (any int: it is masked). It is
// &s.cells[pid&s.mask] without the bounds check, which the compiler cannot
// drop (it does not know that len(cells) is a power of two): on the hot
// path that check cost as much as the test of the add's result.
func (s *series) cell(pid int) *atomic.Int64 {
	return &(*paddedCell)(unsafe.Add(unsafe.Pointer(s.first), uintptr(pid&s.mask)*unsafe.Sizeof(paddedCell{}))).n
}

// discard takes the adds of names the registry refused (the refusal is
// counted where it happens). It belongs to no counter and is never read.
var discard = newSeries(nil, attribute.NewSet())

// landed handles an add of n whose cell came back below n. Either s was
// forgotten before the add, which the collector's final read then missed,
// and n is counted again on the live series of the same name and
// attributes; or a live total passed 2^63, and n is already counted. It
// returns the series that counted n.
func (s *series) landed(n int64) *series {
	if !s.retired.Load() {
		return s
	}
	s.c.reg.recounted.Add(1)
	for {
		live := s.c.reg.seriesOf(s.c.name, s.attrs)
		v := live.cell(procPin()).Add(n)
		procUnpin()
		if v >= n || !live.retired.Load() {
			return live
		}
		s = live // forgotten again meanwhile: its final read missed n too
	}
}

// retire marks every cell and returns the final total: each add landed
// either before its cell's mark, and is in the total, or after it, and its
// caller sees the mark and counts it elsewhere. Called once, under the
// counter's lock.
func (s *series) retire() int64 {
	s.retired.Store(true)
	var t int64
	for i := range s.cells {
		t += s.cells[i].n.Or(retiredBit)
	}
	return t
}

func (s *series) total() int64 {
	var t int64
	for i := range s.cells {
		t += s.cells[i].n.Load()
	}
	return t
}
