package track

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// churn runs intervals of attribute and name churn on t: each interval
// counts perInterval new attribute values and one new name, then collects.
// It returns the total the collections reported.
func churn(tb testing.TB, t *Tracker, p *producer, from, to, perInterval int) int64 {
	tb.Helper()
	var total int64
	for i := from; i < to; i++ {
		for j := 0; j < perInterval; j++ {
			t.Increment("jobs", attribute.String("build", fmt.Sprintf("b%d-%d", i, j)))
		}
		t.Add(fmt.Sprintf("deploy-%d", i), 2)
		sms, err := p.Produce(context.Background())
		require.NoError(tb, err)
		for _, sm := range sms {
			for _, m := range sm.Metrics {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					total += dp.Value
				}
			}
		}
	}
	return total
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestHeapStaysFlatUnderChurn(t *testing.T) {
	tr := newTracker(100)
	p := newProducer(tr.reg, defaultIdleIntervals)
	const perInterval = 50
	total := churn(t, tr, p, 0, 100, perInterval)
	h100 := heapAfterGC()
	total += churn(t, tr, p, 100, 1000, perInterval)
	h1000 := heapAfterGC()

	assert.Equal(t, int64(1000*(perInterval+2)), total, "every count reported once")
	st := tr.Stats()
	assert.Zero(t, st.FoldedIntoOverflow)
	assert.LessOrEqual(t, st.ActiveSeries, int64(perInterval+1), "one interval's series are alive after its collection")
	assert.LessOrEqual(t, st.ActiveNames, int64(2))
	t.Logf("heap after 100 intervals %d B, after 1000 %d B", h100, h1000)
	const slack = 256 << 10
	assert.Less(t, int64(h1000)-int64(h100), int64(slack), "heap after 1000 intervals within 256 KiB of after 100")
}

func TestNamesLimitAppliesToActiveNames(t *testing.T) {
	tr := newTracker(defaultSeriesLimit)
	tr.refusals.setHandler(func(error) {}) // refusals are expected here
	tr.reg.nameLimit = 10
	p := newProducer(tr.reg, defaultIdleIntervals)
	total := churn(t, tr, p, 0, 50, 1) // 50 names in all, two alive at a time
	assert.Equal(t, int64(50*3), total)
	assert.Zero(t, tr.Stats().Refused, "forgotten names free their place")

	for i := 0; i < 10; i++ {
		tr.Increment(fmt.Sprintf("burst-%d", i))
	}
	assert.Equal(t, uint64(2), tr.Stats().Refused, "more names than the limit at once are still refused")
}

// A name whose string has a stable address is cached; forgetting its counter
// must clear the cache, and the name must count again afterwards.
func TestForgottenNameLeavesNoStaleCacheEntry(t *testing.T) {
	tr := newTracker(defaultSeriesLimit)
	p := newProducer(tr.reg, 1)
	const name = "cached-name"
	var total int64
	for round := 0; round < 4; round++ {
		for i := 0; i < 3; i++ { // the second miss caches the address
			tr.Increment(name)
		}
		c := tr.reg.lookup(name)
		require.False(t, c.retired.Load())
		for i := 0; i < 2; i++ { // report, then forget
			sms, err := p.Produce(context.Background())
			require.NoError(t, err)
			for _, sm := range sms {
				for _, m := range sm.Metrics {
					total += m.Data.(metricdata.Sum[int64]).DataPoints[0].Value
				}
			}
		}
		assert.True(t, c.retired.Load(), "round %d: the idle name was forgotten", round)
		for i := range tr.reg.cache {
			if a := tr.reg.cache[i].Load(); a != nil {
				assert.NotSame(t, c, a.c, "round %d: no cache entry points at a forgotten counter", round)
			}
		}
	}
	assert.Equal(t, int64(4*3), total)
}

// An add that lands after the read judging its series idle, but before the
// series is marked, is in the final read: it is reported in the collection
// that forgets the series, once.
func TestAddRacingWithForgettingIsReportedOnce(t *testing.T) {
	tr := newTracker(defaultSeriesLimit)
	p := newProducer(tr.reg, 1)
	collect := func() (total int64) {
		sms, err := p.Produce(context.Background())
		require.NoError(t, err)
		for _, sm := range sms {
			for _, m := range sm.Metrics {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					total += dp.Value
				}
			}
		}
		return total
	}
	tr.Add("raced", 5)
	assert.Equal(t, int64(5), collect())

	testHookBeforeRetire = func(s *series) {
		s.cells[0].n.Add(2) // an add in the window, as Increment does it
	}
	defer func() { testHookBeforeRetire = nil }()
	assert.Equal(t, int64(2), collect(), "the raced add is reported by the collection that forgets the series")
	testHookBeforeRetire = nil
	assert.Equal(t, uint64(1), tr.reg.raced.Load())
	assert.Zero(t, tr.Stats().ActiveSeries)

	tr.Add("raced", 1)
	assert.Equal(t, int64(1), collect(), "and never again")
	assert.Zero(t, collect())
}
