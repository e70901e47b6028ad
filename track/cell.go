package track

import (
	"runtime"
	"sync/atomic"
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

// series is one (name, attribute set) stream. Its total is the sum of its
// cells; each cell only grows, so a total read while others add is a valid
// lower bound and successive reads never decrease.
type series struct {
	cells []paddedCell
	attrs attributeSet

	// observed is the total last handed to an SDK reader, and base the total
	// already reported by earlier pipelines. Both are only touched by the
	// collection callback or under the registry lock while no pipeline runs.
	observed int64
	base     int64
}

func newSeries(attrs attributeSet) *series {
	return &series{cells: make([]paddedCell, stripes), attrs: attrs}
}

func (s *series) add(n int64) {
	cell := &s.cells[procPin()&(len(s.cells)-1)]
	cell.n.Add(n)
	procUnpin()
}

func (s *series) total() int64 {
	var t int64
	for i := range s.cells {
		t += s.cells[i].n.Load()
	}
	return t
}
