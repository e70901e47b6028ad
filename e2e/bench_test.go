package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	res "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/trackhq/track/track"
)

// benchDuration is how long each load benchmark sends; TRACK_BENCH_SECONDS overrides it.
func benchDuration() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("TRACK_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 15 * time.Second
}

const (
	loadWorkers      = 4   // concurrent OTLP clients
	loadMetrics      = 10  // metric names per request (each worker its own)
	loadSeriesPerMet = 100 // series per metric name, under the sampler's default cardinality cap
	loadPointsPerReq = loadMetrics * loadSeriesPerMet
	loadMetricPrefix = "bench-load-"
)

// loadRequest is one worker's request, shaped like one export of a busy service: loadMetrics
// delta sums with loadSeriesPerMet points of value 1 each, 4000 series over all workers.
func loadRequest(worker int) *colmetrics.ExportMetricsServiceRequest {
	str := func(k, v string) *common.KeyValue {
		return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
	}
	var ms []*metrics.Metric
	for m := range loadMetrics {
		points := make([]*metrics.NumberDataPoint, loadSeriesPerMet)
		for i := range points {
			points[i] = &metrics.NumberDataPoint{
				Attributes: []*common.KeyValue{str("series", strconv.Itoa(i)), str("result", "ok")},
				Value:      &metrics.NumberDataPoint_AsInt{AsInt: 1},
			}
		}
		ms = append(ms, &metrics.Metric{
			Name: fmt.Sprintf("%s%d", loadMetricPrefix, worker*loadMetrics+m),
			Data: &metrics.Metric_Sum{Sum: &metrics.Sum{
				AggregationTemporality: metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
				IsMonotonic:            true,
				DataPoints:             points,
			}},
		})
	}
	return &colmetrics.ExportMetricsServiceRequest{ResourceMetrics: []*metrics.ResourceMetrics{{
		Resource: &res.Resource{Attributes: []*common.KeyValue{str("service.name", "bench"),
			str("service.instance.id", fmt.Sprintf("worker-%d", worker))}},
		ScopeMetrics: []*metrics.ScopeMetrics{{Scope: &common.InstrumentationScope{Name: "bench"}, Metrics: ms}},
	}}}
}

// sendLoad sends requests from loadWorkers clients for d, each request with fresh timestamps (so
// no two are the same request), retrying a refused request (a full queue) as a sender would. It
// returns the points the collector acknowledged.
func sendLoad(b *testing.B, endpoint string, d time.Duration) int64 {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	defer conn.Close()
	client := colmetrics.NewMetricsServiceClient(conn)
	var acked atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := loadRequest(w)
			var points []*metrics.NumberDataPoint
			for _, m := range req.ResourceMetrics[0].ScopeMetrics[0].Metrics {
				points = append(points, m.GetSum().DataPoints...)
			}
			for time.Now().Before(deadline) {
				now := uint64(time.Now().UnixNano())
				for i, p := range points {
					p.StartTimeUnixNano = now - uint64(time.Second)
					p.TimeUnixNano = now + uint64(i)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := client.Export(ctx, req)
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				acked.Add(int64(len(points)))
			}
		}()
	}
	wg.Wait()
	return acked.Load()
}

// peakRSS returns the peak resident set of a process, in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// profileCollector, when TRACK_BENCH_PROFILE names a file, writes a 10 s CPU profile of c taken
// from its pprof extension while the load runs. The returned channel closes when it is done.
func profileCollector(b *testing.B, c *collector) <-chan struct{} {
	done := make(chan struct{})
	path := os.Getenv("TRACK_BENCH_PROFILE")
	if path == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		time.Sleep(2 * time.Second)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=10", c.pprof))
		if err != nil {
			b.Error(err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			b.Error(err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return done
}

// BenchmarkEndToEndPostgres measures the data points per second the built collector, on
// examples/collector.yaml, sustains into Postgres: from the first request until track.minutely
// holds every acknowledged point (so the persistent queue's backlog is drained, not hidden). It
// also reports the collector's peak RSS. Each call sends for benchDuration.
func BenchmarkEndToEndPostgres(b *testing.B) {
	sc := sharedDB(b)
	c := newCollector(b, "bench-pg", collectorOptions{dsn: sc.dsn, schema: sc.schema})
	c.start()
	profiled := profileCollector(b, c)
	start := time.Now()
	acked := sendLoad(b, c.grpc, benchDuration())
	sentFor := time.Since(start)
	<-profiled
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	awaitSum(ctx, b, sc, loadMetricPrefix, acked)
	stored := time.Since(start)
	rss := peakRSS(c.pid())
	b.ReportMetric(float64(acked)/stored.Seconds(), "points/s")
	b.ReportMetric(float64(acked)/sentFor.Seconds(), "acked-points/s")
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
	b.Logf("postgres: %d points acknowledged in %s, all stored after %s; peak RSS %.0f MiB", acked, sentFor, stored, rss)
}

// awaitSum polls until the rollups under prefix hold exactly want, failing if they ever hold
// more or ctx ends first.
func awaitSum(ctx context.Context, b *testing.B, sc db, prefix string, want int64) {
	b.Helper()
	for {
		got, err := sc.sumPrefix(ctx, prefix)
		require.NoError(b, err)
		if got == want {
			return
		}
		require.Less(b, got, want+1, "stored more than was acknowledged")
		require.NoError(b, ctx.Err(), "stored %d of %d", got, want)
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkEndToEndDebug is the same load into the same pipeline with the debug exporter
// (verbosity basic) instead of pgrollup: the pipeline's own ceiling on this machine.
func BenchmarkEndToEndDebug(b *testing.B) {
	benchDebug(b, "metrics", "points", sendLoad)
}

// benchDebug sends load into a collector whose pipeline for signal ends in the debug
// exporter, and reports the acknowledged rate in unit/s and the collector's peak RSS.
func benchDebug(b *testing.B, signal, unit string, load func(*testing.B, string, time.Duration) int64) {
	sc := sharedDB(b)
	c := newCollector(b, "bench-"+signal+"-debug", collectorOptions{dsn: sc.dsn, schema: sc.schema, override: `
service:
  pipelines:
    ` + signal + `:
      exporters: [debug]
`})
	c.start()
	start := time.Now()
	acked := load(b, c.grpc, benchDuration())
	took := time.Since(start)
	rss := peakRSS(c.pid())
	b.ReportMetric(float64(acked)/took.Seconds(), unit+"/s")
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
	b.Logf("debug: %d %s acknowledged in %s; peak RSS %.0f MiB", acked, unit, took, rss)
}

// BenchmarkFreshness measures the time from Increment to the count being visible in
// track.minutely, with track's default export interval (10 s) and the example config's
// flush_interval (1 s): 40 increments, one every 750 ms, each on its own series, while a poller
// reads the table every 50 ms. It reports p50, p99 and max in seconds.
func BenchmarkFreshness(b *testing.B) {
	sc := sharedDB(b)
	c := newCollector(b, "bench-fresh", collectorOptions{dsn: sc.dsn, schema: sc.schema})
	c.start()
	tr, err := track.New(context.Background(), track.WithEndpoint(c.grpc), track.WithServiceName("bench-fresh"))
	require.NoError(b, err)
	const samples = 40
	sentAt := make([]time.Time, samples)
	seenAt := make([]time.Time, samples)
	var mu sync.Mutex
	done := make(chan struct{})
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		conn, err := pgx.Connect(context.Background(), sc.dsn)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			rows, err := conn.Query(context.Background(),
				"SELECT (attributes->>'sample')::int FROM "+sc.schema+".minutely WHERE metric = 'bench-fresh'")
			if err != nil {
				continue
			}
			ids, _ := pgx.CollectRows(rows, pgx.RowTo[int])
			now := time.Now()
			mu.Lock()
			for _, id := range ids {
				if id >= 0 && id < samples && seenAt[id].IsZero() {
					seenAt[id] = now
				}
			}
			mu.Unlock()
		}
	}()
	for i := range samples {
		mu.Lock()
		sentAt[i] = time.Now()
		mu.Unlock()
		tr.Increment("bench-fresh", attribute.Int("sample", i))
		time.Sleep(750 * time.Millisecond)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		missing := slices.IndexFunc(seenAt, time.Time.IsZero)
		mu.Unlock()
		if missing < 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(done)
	<-pollerDone
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(b, tr.Shutdown(ctx))
	lat := make([]float64, samples)
	for i := range samples {
		require.False(b, seenAt[i].IsZero(), "sample %d never became visible", i)
		lat[i] = seenAt[i].Sub(sentAt[i]).Seconds()
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(p(0.50), "p50-s")
	b.ReportMetric(p(0.99), "p99-s")
	b.ReportMetric(lat[len(lat)-1], "max-s")
	b.ReportMetric(0, "ns/op")
	b.Logf("freshness over %d increments: p50 %.2fs, p99 %.2fs, max %.2fs", samples, p(0.5), p(0.99), lat[len(lat)-1])
}
