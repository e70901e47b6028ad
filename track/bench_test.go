package track

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
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
