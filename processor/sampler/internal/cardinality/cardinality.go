package cardinality // import "github.com/trackhq/track/processor/sampler/internal/cardinality"

import (
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trackhq/track/processor/sampler/internal/sampling"
)

// Tracker tracks the distinct point attribute sets of every metric in the current window and
// admits at most maxSeries of them per metric. Memory is bounded by maxMetrics names and
// maxTracked attribute-set hashes (8 bytes each plus map overhead). It is safe for concurrent use.
type Tracker struct {
	maxSeries  int
	maxMetrics int
	maxTracked int
	window     time.Duration

	mu          sync.RWMutex
	windowStart int64 // unix ns of the current window's start
	metrics     map[string]*SeriesSet
	tracked     int // series admitted over all metrics in this window; guarded by trackedMu
	trackedMu   sync.Mutex
}

// SeriesSet is the set of admitted attribute-set hashes of one metric.
type SeriesSet struct {
	mu  sync.Mutex
	set map[uint64]struct{}
}

// New returns a Tracker with the limits of cfg.
func New(cfg *Config) *Tracker {
	return &Tracker{
		maxSeries:  cfg.MaxSeries,
		maxMetrics: cfg.MaxMetrics,
		maxTracked: cfg.MaxTrackedSeries,
		window:     cfg.Window,
		metrics:    map[string]*SeriesSet{},
	}
}

// ForMetric returns the series set of name in the window containing now, or nil when the metric
// cannot be tracked (max_metrics reached): all its points then overflow.
func (c *Tracker) ForMetric(name string, now time.Time) *SeriesSet {
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
		c.metrics = map[string]*SeriesSet{}
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
	s = &SeriesSet{set: map[uint64]struct{}{}}
	c.metrics[strings.Clone(name)] = s
	return s
}

// Admit reports whether the attribute set with hash h may keep its own series in s.
func (c *Tracker) Admit(s *SeriesSet, h uint64) bool {
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

// seriesSeed seeds the in-memory attribute-set hashes; they never leave the process.
var seriesSeed = maphash.MakeSeed()

// KeyHash hashes an attribute key for TypedPairHash and StrPairHash.
func KeyHash(k string) uint64 { return maphash.String(seriesSeed, k) }

// StrPairHash is TypedPairHash for a string value s, without reading the value again.
func StrPairHash(hk uint64, s string) uint64 {
	return sampling.Mix64(hk ^ bits.RotateLeft64(maphash.String(seriesSeed, s), 31) ^ uint64(pcommon.ValueTypeStr))
}

// TypedPairHash hashes a key, given by its hash hk, with its value v of type t. Summing it over the
// pairs of a map gives a hash of the attribute set that does not depend on the order of the pairs.
func TypedPairHash(hk uint64, v pcommon.Value, t pcommon.ValueType) uint64 {
	var hv uint64
	switch t {
	case pcommon.ValueTypeStr:
		return StrPairHash(hk, v.Str())
	case pcommon.ValueTypeInt:
		hv = sampling.Mix64(uint64(v.Int()) ^ 0x1)
	case pcommon.ValueTypeDouble:
		hv = sampling.Mix64(math.Float64bits(v.Double()) ^ 0x2)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			hv = 0x3
		} else {
			hv = 0x4
		}
		hv = sampling.Mix64(hv)
	case pcommon.ValueTypeBytes:
		hv = maphash.Bytes(seriesSeed, v.Bytes().AsRaw()) ^ 0x5
	case pcommon.ValueTypeEmpty:
		hv = 0x6
	default:
		hv = maphash.String(seriesSeed, v.AsString()) ^ uint64(t)<<56
	}
	return sampling.Mix64(hk ^ bits.RotateLeft64(hv, 31) ^ uint64(t))
}
