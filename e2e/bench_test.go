package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	res "go.opentelemetry.io/proto/otlp/resource/v1"

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

// encodedLoadRequest is loadRequest(worker) encoded once, with a slot for each point's start time
// (the send time - 1 s) and time (the send time + its index, so no two points are alike).
func encodedLoadRequest(t testing.TB, worker int) *encodedRequest {
	req := loadRequest(worker)
	var offsets []int64
	for _, m := range req.ResourceMetrics[0].ScopeMetrics[0].Metrics {
		for _, p := range m.GetSum().DataPoints {
			i := int64(len(offsets) / 2)
			p.StartTimeUnixNano = stampSentinel(len(offsets))
			p.TimeUnixNano = stampSentinel(len(offsets) + 1)
			offsets = append(offsets, -int64(time.Second), i)
		}
	}
	// NumberDataPoint: start_time_unix_nano is field 2, time_unix_nano field 3, both fixed64.
	return encodeWithStamps(t, req, offsets, 2<<3|1, 3<<3|1)
}

// encodedCumulativeLoadRequest is encodedLoadRequest with cumulative sums that started when it was
// built (a worker is a process that just started), under metric names with prefix, and a slot for
// every point's value.
func encodedCumulativeLoadRequest(t testing.TB, worker int, prefix string) *encodedRequest {
	req := loadRequest(worker)
	start := uint64(time.Now().UnixNano())
	var offsets []int64
	for m, metric := range req.ResourceMetrics[0].ScopeMetrics[0].Metrics {
		metric.Name = fmt.Sprintf("%s%d", prefix, worker*loadMetrics+m)
		sum := metric.GetSum()
		sum.AggregationTemporality = metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
		for _, p := range sum.DataPoints {
			p.StartTimeUnixNano = start
			p.TimeUnixNano = stampSentinel(len(offsets))
			p.Value = &metrics.NumberDataPoint_AsInt{AsInt: int64(stampSentinel(loadPointsPerReq + len(offsets)))}
			offsets = append(offsets, int64(len(offsets)))
		}
	}
	r := encodeWithStamps(t, req, offsets, 3<<3|1)
	// The values: found as the timestamps are, then written at each send.
	var sentinel [8]byte
	pos := 0
	for i := range offsets {
		binary.LittleEndian.PutUint64(sentinel[:], stampSentinel(loadPointsPerReq+i))
		at := bytes.Index(r.buf[pos:], sentinel[:])
		require.GreaterOrEqual(t, at, 1, "value %d not found in the encoded request", i)
		at += pos
		require.Equal(t, byte(6<<3|1), r.buf[at-1], "value %d is not behind as_int's tag", i)
		r.values = append(r.values, at)
		pos = at + 8
	}
	return r
}

// sendLoad sends requests from loadWorkers clients for d, each request with fresh timestamps (so
// no two are the same request), retrying a refused request (a full queue) as a sender would. It
// returns the points the collector acknowledged.
func sendLoad(b *testing.B, endpoint string, d time.Duration) int64 {
	return sendEncoded(b, endpoint, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
		loadPointsPerReq, d, func(w int) *encodedRequest { return encodedLoadRequest(b, w) })
}

// rssParts returns the current anonymous (heap, stacks) and file-backed (bbolt's mapped queue
// file) resident memory of a process, in MiB.
func rssParts(pid int) (anon, file float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		for key, dst := range map[string]*float64{"RssAnon:": &anon, "RssFile:": &file} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
				*dst = kb / 1024
			}
		}
	}
	return anon, file
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

// cpuTimes is a snapshot of the CPU used so far by this process (the load generator), by a
// collector, by the Postgres server and by the whole machine, for telling who took the cores.
type cpuTimes struct {
	self, collector, postgres time.Duration
	busy, idle                time.Duration // all CPUs, from /proc/stat
}

const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux

// procStat returns the fields of /proc/<pid>/stat after the command name (field 3 onwards).
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// ticks adds up the fields at idx (0 is field 3, the state) of a procStat result.
func ticks(f []string, idx ...int) time.Duration {
	var n int64
	for _, i := range idx {
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			n += v
		}
	}
	return time.Duration(n) * clockTick
}

// postgresCPU returns the CPU used by the Postgres server listening on port: its postmaster,
// the children it has reaped and its live children.
func postgresCPU(port string) time.Duration {
	dirs, _ := os.ReadDir("/proc")
	master := -1
	stats := map[int][]string{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f := procStat(pid)
		if len(f) < 15 {
			continue
		}
		stats[pid] = f
		if master < 0 {
			if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
				bytes.Contains(cmd, []byte("-p\x00"+port+"\x00")) && bytes.Contains(cmd, []byte("postgres")) {
				master = pid
			}
		}
	}
	if master < 0 {
		return 0
	}
	total := ticks(stats[master], 11, 12, 13, 14) // utime, stime, cutime, cstime
	for _, f := range stats {
		if f[1] == strconv.Itoa(master) {
			total += ticks(f, 11, 12)
		}
	}
	return total
}

func takeCPUTimes(collectorPID int, dsn string) cpuTimes {
	var t cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		t.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	t.collector = ticks(procStat(collectorPID), 11, 12)
	if u, err := url.Parse(dsn); err == nil && u.Port() != "" {
		t.postgres = postgresCPU(u.Port())
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			switch i {
			case 3, 4: // idle, iowait
				t.idle += time.Duration(n) * clockTick
			case 0, 1, 2, 5, 6, 7: // user, nice, system, irq, softirq, steal
				t.busy += time.Duration(n) * clockTick
			}
		}
	}
	return t
}

// cpuReport reports the cores the collector and the load generator used between a and z, and
// describes who used the machine.
func cpuReport(b *testing.B, a, z cpuTimes, wall time.Duration) string {
	gen, col, pg := (z.self - a.self).Seconds(), (z.collector - a.collector).Seconds(), (z.postgres - a.postgres).Seconds()
	busy, idle := (z.busy - a.busy).Seconds(), (z.idle - a.idle).Seconds()
	if b != nil {
		b.ReportMetric(col/wall.Seconds(), "collector-cores")
		b.ReportMetric(gen/wall.Seconds(), "generator-cores")
	}
	return fmt.Sprintf("CPU over %.1fs: collector %.1fs, generator (this process) %.1fs, postgres %.1fs, "+
		"others %.1fs, idle %.1fs", wall.Seconds(), col, gen, pg, busy-col-gen-pg, idle)
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
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=10", c.Pprof))
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
		// With pprof's mutex_profile_fraction set (TRACK_BENCH_CONFIG), the lock contention too.
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/mutex", c.Pprof)); err == nil {
			defer resp.Body.Close()
			if f, err := os.Create(path + ".mutex"); err == nil {
				defer f.Close()
				_, _ = io.Copy(f, resp.Body)
			}
		}
	}()
	return done
}

// BenchmarkEndToEndPostgres measures the data points per second the built collector, on
// examples/collector.yaml, sustains into Postgres: from the first request until track.minutely
// holds every acknowledged point (so the persistent queue's backlog is drained, not hidden). It
// also reports the collector's peak RSS. Each call sends for benchDuration.
func BenchmarkEndToEndPostgres(b *testing.B) {
	benchEndToEnd(b, loadMetricPrefix, sendLoad)
}

// BenchmarkEndToEndPostgresCumulative is BenchmarkEndToEndPostgres with the load's sums cumulative,
// as plain OTel SDKs send them: pgrollup counts them from its stream state in Postgres. Each
// send of a worker carries the number of its acknowledged sends so far plus one, so the totals end
// at exactly what was acknowledged.
func BenchmarkEndToEndPostgresCumulative(b *testing.B) {
	const prefix = "bench-cum-"
	benchEndToEnd(b, prefix, func(b *testing.B, endpoint string, d time.Duration) int64 {
		return sendEncoded(b, endpoint, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
			loadPointsPerReq, d, func(w int) *encodedRequest { return encodedCumulativeLoadRequest(b, w, prefix) })
	})
}

// benchEndToEnd runs load against a collector on examples/collector.yaml and reports the points
// per second stored under the metric prefix, acknowledged, and the collector's peak RSS.
func benchEndToEnd(b *testing.B, prefix string, load func(b *testing.B, endpoint string, d time.Duration) int64) {
	sc := sharedDB(b)
	c := newCollector(b, "bench-pg", collectorOptions{dsn: sc.dsn, schema: sc.schema})
	c.start()
	profiled := profileCollector(b, c)
	cpu0 := takeCPUTimes(c.pid(), sc.dsn)
	start := time.Now()
	acked := load(b, c.GRPC, benchDuration())
	sentFor := time.Since(start)
	cpu1 := takeCPUTimes(c.pid(), sc.dsn)
	anon, file := rssParts(c.pid())
	b.Logf("resident when the load stopped: %.0f MiB anonymous, %.0f MiB file-backed (the queue file)", anon, file)
	<-profiled
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	storedWhenSent, err := sc.sumPrefix(ctx, prefix)
	require.NoError(b, err)
	awaitSum(ctx, b, sc, prefix, acked)
	stored := time.Since(start)
	cpu2 := takeCPUTimes(c.pid(), sc.dsn)
	b.Logf("sending: %s; %d points stored when the load stopped", cpuReport(nil, cpu0, cpu1, sentFor), storedWhenSent)
	b.Logf("draining: %s", cpuReport(nil, cpu1, cpu2, stored-sentFor))
	b.Log(cpuReport(b, cpu0, cpu2, stored))
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
	cpu0 := takeCPUTimes(c.pid(), sc.dsn)
	start := time.Now()
	acked := load(b, c.GRPC, benchDuration())
	took := time.Since(start)
	b.Log(cpuReport(b, cpu0, takeCPUTimes(c.pid(), sc.dsn), took))
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
	tr, err := track.New(context.Background(), track.WithEndpoint(c.GRPC), track.WithServiceName("bench-fresh"))
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
