package sampler

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

const (
	benchMetrics   = 10
	benchPoints    = 100 // per metric
	benchRecords   = 1000
	benchStackBody = "java.lang.IllegalStateException: payment failed for alice@example.com\n" +
		"\tat com.shop.Pay.charge(Pay.java:120) card=4111 1111 1111 1111\n" +
		"\tat com.shop.Api.post(Api.java:88) Authorization: Bearer abcdefghijklmnopqrstuvwxyz\n" +
		"\tat java.base/java.lang.Thread.run(Thread.java:1583)"
)

// benchMetricsData builds 1000 delta-sum points. Clean points carry five ordinary attributes that
// need no change; PII points carry a user id to hash, a denied key, and values with an email, a
// card number and a bearer token.
func benchMetricsData(pii bool) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("host.name", "checkout-7d9f8-abcde")
	ra.PutStr("deployment.environment.name", "production")
	sm := rm.ScopeMetrics().AppendEmpty()
	for m := range benchMetrics {
		dps := deltaSum(sm, fmt.Sprintf("checkout.requests.%d", m))
		for i := range benchPoints {
			dp := dps.AppendEmpty()
			dp.SetIntValue(int64(i + 1))
			a := dp.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutInt("http.response.status_code", 200+int64(i%5))
			a.PutStr("cloud.region", "eu-west-1")
			if !pii {
				a.PutStr("http.route", "/api/v1/orders/{id}")
				a.PutStr("outcome", fmt.Sprintf("success-%d", i))
				continue
			}
			a.PutStr("http.route", fmt.Sprintf("/users/user%d@example.com/orders", i))
			a.PutStr("user.id", fmt.Sprintf("u-%d", i))
			a.PutStr("user.email", "alice@example.com")
			a.PutStr("note", "card 4111 1111 1111 1111 via Bearer abcdefghijklmnopqrstuvwxyz")
		}
	}
	return stamped(md)
}

func benchLogsData(pii bool) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "web")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range benchRecords {
		lr := event(lrs, "click", testNow)
		a := lr.Attributes()
		a.PutStr("page", "/signup/step-2")
		a.PutStr("target", "#submit")
		a.PutInt("scroll.depth", int64(i%100))
		if !pii {
			lr.Body().SetStr("clicked submit on step 2")
			continue
		}
		a.PutStr("user.id", fmt.Sprintf("u-%d", i))
		a.PutStr("user.email", "alice@example.com")
		a.PutStr("referrer", "https://mail.example.com/?to=bob@example.org")
		lr.Body().SetStr(benchStackBody)
	}
	return ld
}

func reportRate(b *testing.B, perOp int, unit string) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
}

// iterateMetrics reads every attribute of every point: the floor any attribute-touching processor pays.
func iterateMetrics(md pmetric.Metrics) int {
	n := 0
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				dps := ms.At(k).Sum().DataPoints()
				for p := 0; p < dps.Len(); p++ {
					dps.At(p).Attributes().Range(func(k string, v pcommon.Value) bool {
						n += len(k)
						if v.Type() == pcommon.ValueTypeStr {
							n += len(v.Str())
						}
						return true
					})
				}
			}
		}
	}
	return n
}

func iterateLogs(ld plog.Logs) int {
	n := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				n += len(lr.EventName()) + len(lr.Body().Str())
				lr.Attributes().Range(func(k string, v pcommon.Value) bool {
					n += len(k)
					if v.Type() == pcommon.ValueTypeStr {
						n += len(v.Str())
					}
					return true
				})
			}
		}
	}
	return n
}

var sink int

// BenchmarkMetrics measures points/s through the processor. "clean" reprocesses the same data,
// which needs no change, so it measures the processor alone; its peer is "peer-iterate", a plain
// read of every attribute. "pii" must copy its input each time (the processor rewrites it); its
// peer is "peer-copy", the copy alone.
func BenchmarkMetrics(b *testing.B) {
	points := benchMetrics * benchPoints
	b.Run("peer-iterate", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			md := benchMetricsData(false)
			n := 0
			for pb.Next() {
				n += iterateMetrics(md)
			}
			sink += n & 1
		})
		reportRate(b, points, "points")
	})
	b.Run("clean", func(b *testing.B) {
		s, _, _ := newTestSampler(b, testConfig())
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			md := benchMetricsData(false)
			for pb.Next() {
				if _, err := s.processMetrics(context.Background(), md); err != nil {
					b.Error(err)
				}
			}
		})
		reportRate(b, points, "points")
	})
	b.Run("peer-copy", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			src := benchMetricsData(true)
			for pb.Next() {
				md := pmetric.NewMetrics()
				src.CopyTo(md)
			}
		})
		reportRate(b, points, "points")
	})
	b.Run("pii", func(b *testing.B) {
		s, _, _ := newTestSampler(b, testConfig())
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			src := benchMetricsData(true)
			for pb.Next() {
				md := pmetric.NewMetrics()
				src.CopyTo(md)
				if _, err := s.processMetrics(context.Background(), md); err != nil {
					b.Error(err)
				}
			}
		})
		reportRate(b, points, "points")
	})
}

// BenchmarkLogs measures log records/s, with the same peers as BenchmarkMetrics.
func BenchmarkLogs(b *testing.B) {
	b.Run("peer-iterate", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ld := benchLogsData(false)
			n := 0
			for pb.Next() {
				n += iterateLogs(ld)
			}
			sink += n & 1
		})
		reportRate(b, benchRecords, "records")
	})
	b.Run("clean", func(b *testing.B) {
		s, _, _ := newTestSampler(b, testConfig())
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ld := benchLogsData(false)
			for pb.Next() {
				if _, err := s.processLogs(context.Background(), ld); err != nil {
					b.Error(err)
				}
			}
		})
		reportRate(b, benchRecords, "records")
	})
	b.Run("peer-copy", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			src := benchLogsData(true)
			for pb.Next() {
				ld := plog.NewLogs()
				src.CopyTo(ld)
			}
		})
		reportRate(b, benchRecords, "records")
	})
	b.Run("pii", func(b *testing.B) {
		s, _, _ := newTestSampler(b, testConfig())
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			src := benchLogsData(true)
			for pb.Next() {
				ld := plog.NewLogs()
				src.CopyTo(ld)
				if _, err := s.processLogs(context.Background(), ld); err != nil {
					b.Error(err)
				}
			}
		})
		reportRate(b, benchRecords, "records")
	})
}
