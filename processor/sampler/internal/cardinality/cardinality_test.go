package cardinality

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestTrackerBounds checks the three bounds of the tracker's memory, and that a new window starts
// empty.
func TestTrackerBounds(t *testing.T) {
	cfg := Config{Enabled: true, MaxSeries: 3, Window: time.Hour, MaxMetrics: 2, MaxTrackedSeries: 5}
	require.NoError(t, cfg.Validate())
	tr := New(&cfg)
	now := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	admitted := func(name string, from, to uint64) int {
		s := tr.ForMetric(name, now)
		n := 0
		for h := from; h < to; h++ {
			if tr.Admit(s, h) {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 3, admitted("a", 0, 10), "max_series")
	assert.Equal(t, 3, admitted("a", 0, 3), "admitted series stay admitted")
	assert.Equal(t, 2, admitted("b", 0, 10), "max_tracked_series over all metrics")
	assert.Nil(t, tr.ForMetric("c", now), "max_metrics")
	assert.False(t, tr.Admit(nil, 1), "an untracked metric admits nothing")
	assert.Len(t, tr.metrics, 2)
	assert.Equal(t, 5, tr.tracked)

	now = now.Add(time.Hour)
	assert.Equal(t, 3, admitted("c", 0, 10), "a new window forgets everything")
	assert.Len(t, tr.metrics, 1)
	assert.Equal(t, 3, tr.tracked)
}

func TestTrackerConcurrent(t *testing.T) {
	cfg := Config{Enabled: true, MaxSeries: 100, Window: time.Hour, MaxMetrics: 10, MaxTrackedSeries: 250}
	tr := New(&cfg)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := tr.ForMetric(string(rune('a'+g)), now)
			n := 0
			for h := range uint64(200) {
				if tr.Admit(s, h) {
					n++
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, 250, tr.tracked, "max_tracked_series holds under concurrency")
	assert.Equal(t, 250, total, "every admission is counted once")
}

func TestAttrSetHash(t *testing.T) {
	sum := func(m pcommon.Map) (h uint64) {
		m.Range(func(k string, v pcommon.Value) bool {
			h += TypedPairHash(KeyHash(k), v, v.Type())
			return true
		})
		return h
	}
	a, b := pcommon.NewMap(), pcommon.NewMap()
	a.PutStr("x", "1")
	a.PutInt("y", 2)
	b.PutInt("y", 2)
	b.PutStr("x", "1")
	assert.Equal(t, sum(a), sum(b), "order-independent")
	assert.Equal(t, StrPairHash(KeyHash("x"), "1"), TypedPairHash(KeyHash("x"), pcommon.NewValueStr("1"), pcommon.ValueTypeStr))
	c, d := pcommon.NewMap(), pcommon.NewMap()
	c.PutStr("x", "2")
	d.PutInt("x", 2)
	assert.NotEqual(t, sum(c), sum(d), "the int 2 and the string \"2\" differ")
}
