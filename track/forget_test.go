package track_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/trackhq/track/internal/otlptest"
	"github.com/trackhq/track/track"
)

// errorLog collects what a tracker reports to its error handler.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) handle(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) matching(target error) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []error
	for _, err := range l.errs {
		if errors.Is(err, target) {
			out = append(out, err)
		}
	}
	return out
}

// The measurement: 50 new attribute values per interval, never used
// again, with a limit of 100 per name. Each interval's values are forgotten
// once idle, so nothing folds into overflow.
func TestChurnBelowTheLimitNeverOverflows(t *testing.T) {
	for _, idle := range []int{1, 2} {
		t.Run(fmt.Sprintf("idle %d", idle), func(t *testing.T) {
			r := otlptest.Start(t)
			var log errorLog
			tr := newTracker(t, r, track.WithSeriesLimit(100), track.WithIdleIntervals(idle), track.WithErrorHandler(log.handle))
			ctx := context.Background()
			// With idle intervals n, the sets of n+1 intervals are alive when
			// a new one starts: that many intervals must fit in the limit.
			perInterval := 100 / (idle + 1)
			const intervals = 15
			maxActive := int64(0)
			for i := 0; i < intervals; i++ {
				for j := 0; j < perInterval; j++ {
					tr.Increment("jobs", attribute.String("build", fmt.Sprintf("b%d-%d", i, j)))
				}
				maxActive = max(maxActive, tr.Stats().ActiveSeries)
				require.NoError(t, tr.Flush(ctx))
			}
			require.NoError(t, tr.Shutdown(ctx))

			assert.Equal(t, int64(intervals*perInterval), r.Sum("jobs", nil))
			assert.Zero(t, r.Sum("jobs", map[string]string{"otel.metric.overflow": "true"}), "nothing folded")
			st := tr.Stats()
			assert.Zero(t, st.FoldedIntoOverflow)
			assert.LessOrEqual(t, maxActive, int64(100), "active series stay within the limit")
			assert.Empty(t, log.matching(track.ErrSeriesOverflow))
			series := map[string]bool{}
			for _, p := range counted(r) {
				series[p.Attrs["build"]] = true
			}
			assert.Len(t, series, intervals*perInterval, "every value kept its own series")
		})
	}
}

func TestMoreActiveSetsThanTheLimitStillFoldIntoOverflow(t *testing.T) {
	r := otlptest.Start(t)
	var log errorLog
	tr := newTracker(t, r, track.WithSeriesLimit(5), track.WithErrorHandler(log.handle))
	ctx := context.Background()
	const users, intervals = 20, 3
	for i := 0; i < intervals; i++ {
		for u := 0; u < users; u++ {
			tr.Increment("logins", attribute.String("user", fmt.Sprint(u)))
		}
		st := tr.Stats()
		assert.Equal(t, uint64((i+1)*(users-5)), st.FoldedIntoOverflow, "interval %d", i)
		assert.Equal(t, int64(6), st.ActiveSeries, "five sets and the overflow series")
		require.NoError(t, tr.Flush(ctx))
	}
	require.NoError(t, tr.Shutdown(ctx))

	assert.Equal(t, int64(users*intervals), r.Sum("logins", nil), "totals stay exact")
	assert.Equal(t, int64((users-5)*intervals), r.Sum("logins", map[string]string{"otel.metric.overflow": "true"}))
	require.Eventually(t, func() bool { return len(log.matching(track.ErrSeriesOverflow)) > 0 }, 5*time.Second, time.Millisecond)
	reports := log.matching(track.ErrSeriesOverflow)
	assert.Len(t, reports, 1, "the first overflow of a name is reported once")
	assert.Contains(t, reports[0].Error(), `"logins"`)
	assert.Contains(t, reports[0].Error(), "5 active attribute sets")
}

// Sets that folded into overflow get series of their own once forgetting
// made room, through plain calls and handles alike.
func TestFoldedSetsGetTheirOwnSeriesOnceThereIsRoom(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r, track.WithSeriesLimit(5), track.WithIdleIntervals(1))
	ctx := context.Background()
	user := func(u int) attribute.KeyValue { return attribute.String("user", fmt.Sprint(u)) }
	for u := 0; u < 20; u++ {
		tr.Increment("logins", user(u))
	}
	h := tr.Counter("logins", user(7)) // bound to the overflow series
	require.NoError(t, tr.Flush(ctx))

	h.Increment() // users 7, 8, 9 go on; 0 to 4 fall idle
	tr.Increment("logins", user(8))
	tr.Increment("logins", user(9))
	require.NoError(t, tr.Flush(ctx)) // forgets 0 to 4, and the overflow series

	h.Increment()
	tr.Increment("logins", user(8))
	tr.Increment("logins", user(9))
	st := tr.Stats()
	assert.Equal(t, int64(3), st.ActiveSeries, "7, 8 and 9 have series of their own, and nothing folds")
	assert.Equal(t, uint64(15+3), st.FoldedIntoOverflow)
	require.NoError(t, tr.Shutdown(ctx))

	assert.Equal(t, int64(20+3+3), r.Sum("logins", nil))
	assert.Equal(t, int64(15+3), r.Sum("logins", map[string]string{"otel.metric.overflow": "true"}))
	for _, u := range []string{"7", "8", "9"} {
		assert.Equal(t, int64(1), r.Sum("logins", map[string]string{"user": u}), "user %s in its own series once", u)
	}
}

func TestHandleCountsBeforeAndAfterItsSeriesIsForgotten(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r, track.WithIdleIntervals(2))
	ctx := context.Background()
	plain := tr.Counter("payments")
	card := tr.Counter("payments", attribute.String("method", "card"))
	plain.Increment()
	card.Add(3)
	require.NoError(t, tr.Flush(ctx))
	assert.Equal(t, int64(2), tr.Stats().ActiveSeries)
	assert.Equal(t, int64(1), tr.Stats().ActiveNames)

	// Two collections without increments: both series and the name go.
	require.NoError(t, tr.Flush(ctx))
	assert.Equal(t, int64(2), tr.Stats().ActiveSeries, "one idle interval is not enough")
	require.NoError(t, tr.Flush(ctx))
	assert.Zero(t, tr.Stats().ActiveSeries)
	assert.Zero(t, tr.Stats().ActiveNames)

	recounted := tr.Recounted()
	plain.Increment()
	card.Add(4)
	card.Increment()
	assert.Equal(t, recounted+2, tr.Recounted(), "each handle found its series forgotten once, then attached again")
	assert.Equal(t, int64(2), tr.Stats().ActiveSeries)
	tr.Increment("payments", attribute.String("method", "card")) // the same series as the handle's
	assert.Equal(t, int64(2), tr.Stats().ActiveSeries)
	require.NoError(t, tr.Shutdown(ctx))

	plainTotal := r.Sum("payments", nil) - r.Sum("payments", map[string]string{"method": "card"})
	assert.Equal(t, int64(1+1), plainTotal)
	assert.Equal(t, int64(3+4+1+1), r.Sum("payments", map[string]string{"method": "card"}))
}

// Many goroutines count through plain calls and handles while collections
// run back to back with the smallest idle threshold, so series and names are
// forgotten while they are being counted. Every increment must arrive at the
// receiver exactly once.
func TestNoCountLostOrDoubledWhileSeriesAreForgotten(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r, track.WithIdleIntervals(1), track.WithSeriesLimit(1000))
	ctx := context.Background()

	names := []string{"stress-a", "stress-b", "stress-c", "stress-d", "stress-e", "stress-f"}
	// Rare names go idle as a whole, so names are forgotten too while
	// counted. Their strings keep one address each: they are cached.
	var rare []string
	for i := 0; i < 24; i++ {
		rare = append(rare, fmt.Sprintf("stress-rare-%d", i))
	}
	const keys, goroutines, perGoroutine, minCollections = 12, 8, 4000, 300
	type key struct{ name, k string }

	stop := make(chan struct{})
	var flushes atomic.Int64
	var flusher sync.WaitGroup
	flusher.Add(1)
	go func() {
		defer flusher.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			assert.NoError(t, tr.Flush(ctx))
			flushes.Add(1)
			st := tr.Stats() // read while series come and go
			assert.GreaterOrEqual(t, st.ActiveSeries, int64(0))
		}
	}()

	perGoroutineCounts := make([]map[key]int64, goroutines)
	var workers sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			mine := map[key]int64{}
			type bound struct {
				key
				h *track.CounterHandle
			}
			var handles []bound
			for i := 0; i < 4; i++ {
				name, k := names[rng.IntN(len(names))], rng.IntN(keys)
				handles = append(handles, bound{key{name, fmt.Sprint(k)}, tr.Counter(name, attribute.Int("k", k))})
			}
			// Count until enough collections ran while counting.
			for i := 0; i < perGoroutine || flushes.Load() < minCollections; i++ {
				n := int64(1 + rng.IntN(3))
				switch rng.IntN(7) {
				case 0:
					b := handles[rng.IntN(len(handles))]
					b.h.Add(n)
					mine[b.key] += n
				case 1:
					b := handles[rng.IntN(len(handles))]
					b.h.Increment()
					mine[b.key]++
				case 2:
					name := rare[rng.IntN(len(rare))]
					tr.Add(name, n)
					mine[key{name, ""}] += n
				case 3: // Increment has its own copy of the add
					name := rare[rng.IntN(len(rare))]
					tr.Increment(name)
					mine[key{name, ""}]++
				case 4:
					name, k := names[rng.IntN(len(names))], rng.IntN(keys)
					tr.Increment(name, attribute.Int("k", k))
					mine[key{name, fmt.Sprint(k)}]++
				default:
					name, k := names[rng.IntN(len(names))], rng.IntN(keys)
					tr.Add(name, n, attribute.Int("k", k))
					mine[key{name, fmt.Sprint(k)}] += n
				}
				if rng.IntN(32) == 0 {
					time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond) // let series go idle
				} else if rng.IntN(8) == 0 {
					runtime.Gosched()
				}
			}
			perGoroutineCounts[g] = mine
		}()
	}
	workers.Wait()
	close(stop)
	flusher.Wait()
	require.NoError(t, tr.Shutdown(ctx))

	want := map[key]int64{}
	var wantTotal int64
	for _, m := range perGoroutineCounts {
		for k, n := range m {
			want[k] += n
			wantTotal += n
		}
	}
	got := map[key]int64{}
	var gotTotal int64
	for _, p := range counted(r) {
		got[key{p.Metric, p.Attrs["k"]}] += p.Value
		gotTotal += p.Value
	}
	assert.Equal(t, wantTotal, gotTotal)
	assert.Equal(t, want, got, "exact per series")
	assert.Zero(t, tr.Stats().FoldedIntoOverflow)
	assert.Positive(t, tr.Recounted(), "some adds landed on forgotten series")
	t.Logf("%d collections, %d adds counted again after landing on a forgotten series, %d series incremented while being forgotten",
		flushes.Load(), tr.Recounted(), tr.Raced())
}

func TestIdleIntervalsOptionIsValidated(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer func() { _ = mp.Shutdown(context.Background()) }()
	for _, c := range []struct {
		name string
		opts []track.Option
		want string
	}{
		{"zero", []track.Option{track.WithIdleIntervals(0)}, "WithIdleIntervals: 0 is below 1"},
		{"with a meter provider", []track.Option{track.WithMeterProvider(mp), track.WithIdleIntervals(3)}, "WithIdleIntervals does not apply with WithMeterProvider"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, err := track.New(context.Background(), c.opts...)
			require.ErrorIs(t, err, track.ErrInvalidOption)
			require.ErrorContains(t, err, c.want)
			assert.Nil(t, tr)
		})
	}
}

func TestNilAndZeroHandlesDoNothing(t *testing.T) {
	var zero track.CounterHandle
	var nilHandle *track.CounterHandle
	for _, h := range []*track.CounterHandle{&zero, nilHandle} {
		assert.NotPanics(t, func() {
			h.Increment()
			h.Add(3)
			h.Add(-1)
		})
	}
}
