package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// cardinality tracks the distinct point attribute sets of every metric in the current window and
// admits at most maxSeries of them per metric. Memory is bounded by maxMetrics names and
// maxTracked attribute-set hashes (8 bytes each plus map overhead). It is safe for concurrent use.
type cardinality struct {
	maxSeries  int
	maxMetrics int
	maxTracked int
	window     time.Duration

	mu          sync.RWMutex
	windowStart int64 // unix ns of the current window's start
	metrics     map[string]*seriesSet
	tracked     int // series admitted over all metrics in this window; guarded by trackedMu
	trackedMu   sync.Mutex
}

// seriesSet is the set of admitted attribute-set hashes of one metric.
type seriesSet struct {
	mu  sync.Mutex
	set map[uint64]struct{}
}

func newCardinality(cfg *CardinalityConfig) *cardinality {
	return &cardinality{
		maxSeries:  cfg.MaxSeries,
		maxMetrics: cfg.MaxMetrics,
		maxTracked: cfg.MaxTrackedSeries,
		window:     cfg.Window,
		metrics:    map[string]*seriesSet{},
	}
}

// forMetric returns the series set of name in the window containing now, or nil when the metric
// cannot be tracked (max_metrics reached): all its points then overflow.
func (c *cardinality) forMetric(name string, now time.Time) *seriesSet {
	ws := now.Truncate(c.window).UnixNano()
	c.mu.RLock()
	s, ok := c.metrics[name]
	current := c.windowStart == ws
	c.mu.RUnlock()
	if ok && current {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A batch that read the clock before a concurrent rollover (ws < windowStart) uses the new window.
	if ws > c.windowStart {
		c.windowStart = ws
		c.metrics = map[string]*seriesSet{}
		c.trackedMu.Lock()
		c.tracked = 0
		c.trackedMu.Unlock()
	}
	if s, ok := c.metrics[name]; ok {
		return s
	}
	if len(c.metrics) >= c.maxMetrics {
		return nil
	}
	s = &seriesSet{set: map[uint64]struct{}{}}
	c.metrics[strings.Clone(name)] = s
	return s
}

// admit reports whether the attribute set with hash h may keep its own series in s.
func (c *cardinality) admit(s *seriesSet, h uint64) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[h]; ok {
		return true
	}
	if len(s.set) >= c.maxSeries {
		return false
	}
	c.trackedMu.Lock()
	full := c.tracked >= c.maxTracked
	if !full {
		c.tracked++
	}
	c.trackedMu.Unlock()
	if full {
		return false
	}
	s.set[h] = struct{}{}
	return true
}

// mix64 is the splitmix64 finalizer: it spreads every input bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// seriesSeed seeds the in-memory attribute-set hashes; they never leave the process.
var seriesSeed = maphash.MakeSeed()

func keyHash(k string) uint64 { return maphash.String(seriesSeed, k) }

// strPairHash is typedPairHash for a string value s, without reading the value again.
func strPairHash(hk uint64, s string) uint64 {
	return mix64(hk ^ bits.RotateLeft64(maphash.String(seriesSeed, s), 31) ^ uint64(pcommon.ValueTypeStr))
}

// typedPairHash hashes a key, given by its hash hk, with its value v of type t. Summing it over the
// pairs of a map gives a hash of the attribute set that does not depend on the order of the pairs.
func typedPairHash(hk uint64, v pcommon.Value, t pcommon.ValueType) uint64 {
	var hv uint64
	switch t {
	case pcommon.ValueTypeStr:
		return strPairHash(hk, v.Str())
	case pcommon.ValueTypeInt:
		hv = mix64(uint64(v.Int()) ^ 0x1)
	case pcommon.ValueTypeDouble:
		hv = mix64(math.Float64bits(v.Double()) ^ 0x2)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			hv = 0x3
		} else {
			hv = 0x4
		}
		hv = mix64(hv)
	case pcommon.ValueTypeBytes:
		hv = maphash.Bytes(seriesSeed, v.Bytes().AsRaw()) ^ 0x5
	case pcommon.ValueTypeEmpty:
		hv = 0x6
	default:
		hv = maphash.String(seriesSeed, v.AsString()) ^ uint64(t)<<56
	}
	return mix64(hk ^ bits.RotateLeft64(hv, 31) ^ uint64(t))
}
