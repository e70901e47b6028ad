package pgrollup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/requestkey"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/trackhq/track/internal/pgtest"
)

const (
	benchSeries   = 10_000 // active series
	benchBatch    = 1_000  // points per pushed request
	benchParallel = 8      // naive writers per GOMAXPROCS
	// benchPushers is how many pushes wait at once per GOMAXPROCS, as the queue's num_consumers
	// would: a push returns only once its flush commits, so the points in one flush (and the
	// aggregation ratio) grow with the number of concurrent pushes.
	benchPushers = 200
)

// benchRequest builds one request of benchBatch points of metric bench-<n%100>, series
// first..first+benchBatch (mod benchSeries), all at time at, from 10 services.
func benchRequest(first int, at time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	per := benchBatch / 10
	for s := range 10 {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
		rm.Resource().Attributes().PutStr("service.instance.id", "bench")
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for i := range per {
			n := (first + s*per + i) % benchSeries
			m := ms.AppendEmpty()
			m.SetName(fmt.Sprintf("bench-%d", n%100))
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			dp := sum.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-10 * time.Second)))
			dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
			dp.SetIntValue(1)
			dp.Attributes().PutStr("route", fmt.Sprintf("/r/%d", n/100))
			dp.Attributes().PutStr("result", "ok")
		}
	}
	return md
}

// restamp moves every point of md to at.
func restamp(md pmetric.Metrics, at time.Time) {
	ts := pcommon.NewTimestampFromTime(at)
	eachBenchSum(md, func(sum pmetric.Sum) {
		dp := sum.DataPoints().At(0)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-10 * time.Second)))
		dp.SetTimestamp(ts)
	})
}

// eachBenchSum calls f with every Sum of a request built by benchRequest.
func eachBenchSum(md pmetric.Metrics, f func(pmetric.Sum)) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			f(ms.At(j).Sum())
		}
	}
}

// benchPush pushes requests from benchPushers*GOMAXPROCS goroutines. next returns the first series
// and the time of a push; each push gets a distinct sequence number so that no two share a key.
// With cumulative, the points are cumulative sums whose value is the sequence number (see
// BenchmarkPushCumulative).
func benchPush(b *testing.B, cumulative bool, next func(seq int64) (int, time.Time)) {
	build := benchRequest
	if cumulative {
		build = benchCumulativeRequest
	}
	te := startExporter(b, nil, func(c *Config) {
		c.FlushInterval = 100 * time.Millisecond
		c.QueueConfig.Get().NumConsumers = benchPushers * runtime.GOMAXPROCS(0)
	})
	ctx := context.Background()
	// Warm up: create the series.
	for first := 0; first < benchSeries; first += benchBatch {
		require.NoError(b, te.pushMetrics(ctx, build(first, time.Now().Add(-time.Hour))))
	}
	// Prebuild the requests outside the timed region, so that the benchmark measures the exporter
	// rather than building pdata: per block of series, a free list holding twice the pushes that
	// can wait on that block at once (pushes spread evenly over the blocks). A push takes a request
	// of its block, re-stamps it if its time moved, and gives it back once the push returned.
	type cached struct {
		md pmetric.Metrics
		at time.Time
	}
	pushers := benchPushers * runtime.GOMAXPROCS(0)
	blocks := benchSeries / benchBatch
	perBlock := 2 * (pushers + blocks - 1) / blocks
	free := make([]chan *cached, blocks)
	at0 := time.Now()
	for blk := range free {
		free[blk] = make(chan *cached, pushers)
		for range perBlock {
			free[blk] <- &cached{md: build(blk*benchBatch, at0), at: at0}
		}
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(benchPushers)
	b.ResetTimer()
	cpu0 := benchCPU(b)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := seq.Add(1)
			first, at := next(s)
			var c *cached
			select {
			case c = <-free[first/benchBatch]:
			default: // more pushes than expected on this block: build one (rare)
				c = &cached{md: build(first, at), at: at}
			}
			switch {
			case cumulative: // the time and value make the key unique; the resource is the stream's
				restampCumulative(c.md, at, s)
			case !c.at.Equal(at):
				restamp(c.md, at)
				c.at = at
			}
			if !cumulative {
				c.md.ResourceMetrics().At(0).Resource().Attributes().PutInt("bench.seq", s)
			}
			if err := te.pushMetrics(ctx, c.md); err != nil {
				b.Error(err)
				return
			}
			select {
			case free[first/benchBatch] <- c:
			default:
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := benchCPU(b).sub(cpu0)
	b.ReportMetric(float64(b.N*benchBatch)/elapsed.Seconds(), "points/s")
	// CPU per point, of this process (the exporter and the request re-stamping) and of the
	// Postgres cluster: steadier than points/s on a machine shared with other work.
	b.ReportMetric(float64(cpu.self.Nanoseconds())/float64(b.N*benchBatch), "go-cpu-ns/point")
	b.ReportMetric(float64(cpu.pg.Nanoseconds())/float64(b.N*benchBatch), "pg-cpu-ns/point")
}

// cpuTimes is the CPU time used so far by this process and by the shared Postgres cluster.
type cpuTimes struct{ self, pg time.Duration }

func (c cpuTimes) sub(o cpuTimes) cpuTimes { return cpuTimes{c.self - o.self, c.pg - o.pg} }

// benchCPU reads the CPU time of this process (getrusage) and of the shared test cluster: its
// postmaster, the children it reaped and its live children (from /proc). The cluster part is 0
// for a TRACK_TEST_DSN server.
func benchCPU(b *testing.B) cpuTimes {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	out := cpuTimes{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	dir := pgtest.Shared(b).Dir()
	if dir == "" {
		return out
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	require.NoError(b, err)
	postmaster, _, _ := strings.Cut(string(pidFile), "\n")
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(b, err)
	const tick = 10 * time.Millisecond // USER_HZ = 100 on Linux
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended
		}
		// Fields after the command (which may hold spaces): state ppid ... utime(14) stime(15)
		// cutime(16) cstime(17), numbered from 1 over the whole line.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
		f := strings.Fields(rest)
		pid := strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/stat")
		var ticks int64
		switch {
		case pid == postmaster:
			for _, i := range []int{11, 12, 13, 14} {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += n
			}
		case f[1] == postmaster:
			for _, i := range []int{11, 12} {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += n
			}
		}
		out.pg += time.Duration(ticks) * tick
	}
	return out
}

// BenchmarkPushRepeatedSeries: the points of each push repeat the 10k active series in the current
// minute, as steady traffic does; the rows written stay ~10k per minute per resolution.
func BenchmarkPushRepeatedSeries(b *testing.B) {
	now := time.Now().UTC()
	benchPush(b, false, func(seq int64) (int, time.Time) {
		return int(seq%(benchSeries/benchBatch)) * benchBatch, now
	})
}

// BenchmarkPushNewRows: every point is a new (series, minute): each round over the 10k series
// moves one minute back in time.
func BenchmarkPushNewRows(b *testing.B) {
	now := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Hour)
	rounds := int64(benchSeries / benchBatch)
	benchPush(b, false, func(seq int64) (int, time.Time) {
		return int(seq%rounds) * benchBatch, now.Add(-time.Duration(seq/rounds) * time.Minute)
	})
}

// BenchmarkPushCumulative: as BenchmarkPushRepeatedSeries, but the 10k series are streams of
// cumulative sums (one process, started an hour ago), each push a later export of a block of them:
// the time advances by 1 µs and the value by 1 per push. Concurrent pushes of a block commit in any
// order, so some points arrive late and add 0, as they would from a queue. On top of the delta
// path's rows, a flush locks, reads and updates one state row per stream.
func BenchmarkPushCumulative(b *testing.B) {
	now := time.Now().UTC()
	benchPush(b, true, func(seq int64) (int, time.Time) {
		return int(seq%(benchSeries/benchBatch)) * benchBatch, now.Add(time.Duration(seq) * time.Microsecond)
	})
}

// BenchmarkRestampCumulative: the part of BenchmarkPushCumulative's cost that is the benchmark's
// own re-stamping of a request (pdata allocates the value of every SetIntValue), to subtract from
// its go-cpu-ns/point and allocs/op.
func BenchmarkRestampCumulative(b *testing.B) {
	at := time.Now()
	md := benchCumulativeRequest(0, at)
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		restampCumulative(md, at.Add(time.Duration(i)*time.Microsecond), i)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/point")
}

// benchCumulativeRequest is benchRequest with cumulative points whose stream started an hour
// before at.
func benchCumulativeRequest(first int, at time.Time) pmetric.Metrics {
	md := benchRequest(first, at)
	start := pcommon.NewTimestampFromTime(at.Add(-time.Hour))
	eachBenchSum(md, func(sum pmetric.Sum) {
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		sum.DataPoints().At(0).SetStartTimestamp(start)
	})
	return md
}

// restampCumulative sets the time of every point of md to at and its value to value.
func restampCumulative(md pmetric.Metrics, at time.Time, value int64) {
	ts := pcommon.NewTimestampFromTime(at)
	eachBenchSum(md, func(sum pmetric.Sum) {
		dp := sum.DataPoints().At(0)
		dp.SetTimestamp(ts)
		dp.SetIntValue(value)
	})
}

// benchRows returns n rollup rows for new (series, minute) pairs after offset.
func benchRows(n, offset int) [][]any {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, n)
	for i := range rows {
		k := offset + i
		rows[i] = []any{int64(k % benchSeries), base.Add(time.Duration(k/benchSeries) * time.Minute), 1.0}
	}
	return rows
}

// benchChunks creates a table with createTable, then writes b.N chunks of 10k new rows with write
// (building each chunk outside the timer) and reports rows/s.
func benchChunks(b *testing.B, createTable string, write func(ctx context.Context, pool *pgxpool.Pool, rows [][]any) error) {
	sc := pgtest.NewSchema(b)
	pool := sc.Pool(b)
	ctx := context.Background()
	_, err := pool.Exec(ctx, createTable)
	require.NoError(b, err)
	const chunk = 10_000
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rows := benchRows(chunk, i*chunk)
		b.StartTimer()
		require.NoError(b, write(ctx, pool, rows))
	}
	b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCopyFloor: the raw COPY of (series_id, time, value) rows into a table without indexes;
// the floor under any COPY-based writer. Reported as rows/s.
func BenchmarkCopyFloor(b *testing.B) {
	benchChunks(b, "CREATE TABLE floor (series_id bigint, time timestamptz, value double precision)",
		func(ctx context.Context, pool *pgxpool.Pool, rows [][]any) error {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"floor"}, []string{"series_id", "time", "value"}, pgx.CopyFromRows(rows))
			return err
		})
}

// BenchmarkCopyMerge: COPY into a temp table, then one INSERT ... ON CONFLICT DO UPDATE into a
// table keyed like the rollups, per transaction: the peer the exporter's new-row path is measured
// against. Reported as rows/s.
func BenchmarkCopyMerge(b *testing.B) {
	benchChunks(b, "CREATE TABLE merged (series_id bigint, time timestamptz, value double precision, PRIMARY KEY (series_id, time))",
		func(ctx context.Context, pool *pgxpool.Pool, rows [][]any) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "CREATE TEMP TABLE st (series_id bigint, time timestamptz, value double precision) ON COMMIT DROP"); err != nil {
					return err
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"st"}, []string{"series_id", "time", "value"}, pgx.CopyFromRows(rows)); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO merged AS m SELECT * FROM st ORDER BY 1, 2
ON CONFLICT (series_id, time) DO UPDATE SET value = m.value + excluded.value`)
				return err
			})
		})
}

// BenchmarkNaiveInsertPerPoint: one INSERT ... ON CONFLICT per data point (autocommit), from
// benchParallel*GOMAXPROCS goroutines. Reported as points/s.
func BenchmarkNaiveInsertPerPoint(b *testing.B) {
	sc := pgtest.NewSchema(b)
	pool := sc.Pool(b)
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE naive (series_id bigint, time timestamptz, value double precision, PRIMARY KEY (series_id, time))")
	require.NoError(b, err)
	var seq atomic.Int64
	base := time.Now().UTC().Truncate(time.Minute)
	b.ReportAllocs()
	b.SetParallelism(benchParallel)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := seq.Add(1)
			if _, err := pool.Exec(ctx, `INSERT INTO naive AS n VALUES ($1, $2, 1)
ON CONFLICT (series_id, time) DO UPDATE SET value = n.value + excluded.value`, k%benchSeries, base); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkRequestKey measures the idempotency key of one 1,000-point request against its peer,
// the SHA-256 of the request's protobuf encoding (the key this exporter used before).
func BenchmarkRequestKey(b *testing.B) {
	md := benchRequest(0, time.Now())
	b.Run("canonical-xxh3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := requestkey.Metrics(md); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("peer-proto-sha256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
			if err != nil {
				b.Fatal(err)
			}
			_ = sha256.Sum256(buf)
		}
	})
}
