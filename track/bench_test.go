package track

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The benchmarks put track beside its peers in one run: the floor (one
// shared atomic add), the raw OpenTelemetry SDK counter and the Prometheus
// client. Each has a single-goroutine and a RunParallel form; compare ratios,
// not absolute numbers, on a shared machine.

func benchTracker(b *testing.B) *Tracker {
	b.Helper()
	// An aggregating tracker with no pipeline: Increment's cost is the same
	// whether or not an exporter runs, since collection happens elsewhere.
	return newTracker(defaultSeriesLimit)
}

func BenchmarkFloorAtomicAdd(b *testing.B) {
	var n atomic.Int64
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			n.Add(1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
	})
}

func BenchmarkTrackIncrement(b *testing.B) {
	t := benchTracker(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t.Increment("new-signup")
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t.Increment("new-signup")
			}
		})
	})
}

func BenchmarkTrackIncrementTwoAttrs(b *testing.B) {
	t := benchTracker(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t.Increment("cards-checked", attribute.String("result", "fraudulent"), attribute.String("region", "eu"))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t.Increment("cards-checked", attribute.String("result", "fraudulent"), attribute.String("region", "eu"))
			}
		})
	})
}

func BenchmarkTrackHandleIncrement(b *testing.B) {
	h := benchTracker(b).Counter("new-signup")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Increment()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Increment()
			}
		})
	})
}

func BenchmarkOTelSDKAdd(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(
		sdkmetric.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector))))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	c, err := mp.Meter("bench").Int64Counter("new-signup")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Add(ctx, 1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(ctx, 1)
			}
		})
	})
	b.Run("two-attrs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "fraudulent"), attribute.String("region", "eu")))
		}
	})
}

func BenchmarkPrometheusCounter(b *testing.B) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "new_signup"})
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cards_checked"}, []string{"result", "region"})
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Inc()
			}
		})
	})
	b.Run("vec-two-labels", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			vec.WithLabelValues("fraudulent", "eu").Inc()
		}
	})
	b.Run("vec-two-labels-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				vec.WithLabelValues("fraudulent", "eu").Inc()
			}
		})
	})
}

// The collection benchmarks measure one interval's collection (the counting
// before it is excluded): track's producer against the SDK's own delta
// aggregation, with 100,000 series (50 names of 2,000 attribute sets each),
// all of them counted in each interval, or 1% of them.

const (
	collectNames   = 50
	collectPerName = 2000
)

// collectSeries returns the attribute set of every series, by name.
func collectSeries() (names []string, sets [][]attribute.KeyValue) {
	for n := 0; n < collectNames; n++ {
		names = append(names, fmt.Sprintf("collect-%d", n))
	}
	for i := 0; i < collectPerName; i++ {
		sets = append(sets, []attribute.KeyValue{attribute.Int("shard", i), attribute.String("result", "ok")})
	}
	return names, sets
}

// active reports whether series (name n, set i) is counted in each interval
// when pct percent of them are.
func active(n, i, pct int) bool { return (n*collectPerName+i)%100 < pct }

func BenchmarkCollect(b *testing.B) {
	names, sets := collectSeries()
	for _, c := range []struct {
		name string
		pct  int
		idle int
	}{
		{"all-active", 100, defaultIdleIntervals},
		{"1pct-active", 1, defaultIdleIntervals},
		{"1pct-active-never-forgotten", 1, 1 << 30},
	} {
		b.Run("track/"+c.name, func(b *testing.B) {
			t := newTracker(collectPerName)
			p := newProducer(t.reg, c.idle)
			var hot []*CounterHandle
			for n, name := range names {
				for i, set := range sets {
					h := t.Counter(name, set...)
					h.Increment()
					if active(n, i, c.pct) {
						hot = append(hot, h)
					}
				}
			}
			ctx := context.Background()
			for i := 0; i < 3; i++ { // report everything, then forget the idle series
				for _, h := range hot {
					h.Increment()
				}
				_, _ = p.Produce(ctx)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for _, h := range hot {
					h.Increment()
				}
				b.StartTimer()
				if sms, _ := p.Produce(ctx); len(sms) == 0 {
					b.Fatal("nothing collected")
				}
			}
			b.ReportMetric(float64(t.Stats().ActiveSeries), "series-kept")
		})
	}
	for _, c := range []struct {
		name string
		pct  int
	}{{"all-active", 100}, {"1pct-active", 1}} {
		b.Run("otel-sdk/"+c.name, func(b *testing.B) {
			reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(0))
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			ctx := context.Background()
			type bound struct {
				c   metric.Int64Counter
				opt metric.AddOption
			}
			var all, hot []bound
			for n, name := range names {
				ctr, err := mp.Meter("bench").Int64Counter(name)
				if err != nil {
					b.Fatal(err)
				}
				for i, set := range sets {
					x := bound{ctr, metric.WithAttributeSet(attribute.NewSet(set...))}
					all = append(all, x)
					if active(n, i, c.pct) {
						hot = append(hot, x)
					}
				}
			}
			var rm metricdata.ResourceMetrics
			for _, x := range all {
				x.c.Add(ctx, 1, x.opt)
			}
			for i := 0; i < 3; i++ {
				for _, x := range hot {
					x.c.Add(ctx, 1, x.opt)
				}
				_ = reader.Collect(ctx, &rm)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for _, x := range hot {
					x.c.Add(ctx, 1, x.opt)
				}
				b.StartTimer()
				if err := reader.Collect(ctx, &rm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
