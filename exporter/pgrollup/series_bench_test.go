package pgrollup

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// seedSeriesBench stores the table of the series benchmarks (see BENCHMARKS.md): 1,000 metrics x 10
// series; every series has its last 6 hours of minutes, and the 10 series of the queried metric
// (bench-0) have 90 days of minutes, so a plan that does not bound time in the index would read 130k
// rows per series. The hour and day rows and the totals are the sums of the minutes, as the exporter
// writes them. It installs the functions of migrations 001 and 003 as series_001 and series_003, the
// peers measured in the same run.
func seedSeriesBench(b *testing.B) *testExporter {
	te := startExporter(b, nil)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Minute)
	s := te.schema
	for _, q := range []string{
		`INSERT INTO ` + s + `.series (id, key, metric, service, attributes)
SELECT g, gen_random_uuid(), 'bench-' || (g / 10), 'svc-' || (g % 10), jsonb_build_object('route', '/r/' || g)
  FROM generate_series(0, 9999) g`,
		`ALTER TABLE ` + s + `.rollup_minute DROP CONSTRAINT rollup_minute_pkey`,
		`INSERT INTO ` + s + `.rollup_minute (series_id, time, value)
SELECT g, $1::timestamptz - make_interval(mins => m), 1 FROM generate_series(0, 9999) g, generate_series(1, 360) m`,
		`INSERT INTO ` + s + `.rollup_minute (series_id, time, value)
SELECT g, $1::timestamptz - make_interval(mins => m), (m % 7)::float8 FROM generate_series(0, 9) g, generate_series(361, 90*1440) m`,
		`ALTER TABLE ` + s + `.rollup_minute ADD PRIMARY KEY (series_id, time) INCLUDE (value)`,
		`INSERT INTO ` + s + `.rollup_hour SELECT series_id, date_bin('1 hour', time, timestamptz 'epoch'), sum(value) FROM ` + s + `.rollup_minute GROUP BY 1, 2`,
		`INSERT INTO ` + s + `.rollup_day SELECT series_id, date_bin('1 day', time, timestamptz 'epoch'), sum(value) FROM ` + s + `.rollup_hour GROUP BY 1, 2`,
		`VACUUM ANALYZE ` + s + `.rollup_minute, ` + s + `.rollup_hour, ` + s + `.rollup_day, ` + s + `.series`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{now}
		}
		_, err := te.pool.Exec(ctx, q, args...)
		require.NoError(b, err, q)
	}
	recomputeTotals(b, te.pool, s)
	for _, q := range []string{`VACUUM ANALYZE ` + s + `.total_minute, ` + s + `.total_hour, ` + s + `.total_day`,
		seriesOf(b, te.sc.Name, 1), seriesOf(b, te.sc.Name, 3)} {
		_, err := te.pool.Exec(ctx, q)
		require.NoError(b, err)
	}
	return te
}

// queryTimer times SELECTs of a series function and reports their percentiles.
type queryTimer struct {
	te    *testExporter
	times map[string][]time.Duration
	order []string
}

// run times one call: name labels it, query is the FROM clause's function call (schema added), rows
// the least number of rows it must return.
func (q *queryTimer) run(b *testing.B, name, columns, call string, rows int) {
	if q.times == nil {
		q.times = map[string][]time.Duration{}
	}
	if _, ok := q.times[name]; !ok {
		q.order = append(q.order, name)
	}
	t0 := time.Now()
	r, err := q.te.pool.Query(context.Background(), "SELECT "+columns+" FROM "+q.te.schema+"."+call)
	require.NoError(b, err)
	n := 0
	for r.Next() {
		n++
	}
	require.NoError(b, r.Err())
	q.times[name] = append(q.times[name], time.Since(t0))
	if n < rows {
		b.Fatalf("%s: got %d rows, want at least %d", name, n, rows)
	}
}

// loop runs b.N rounds of the three calls (the first is the one measured, the others its peers) in
// an order that rotates each round, then filtered, and reports the percentiles.
func (q *queryTimer) loop(b *testing.B, measured, peer1, peer2, filtered func()) {
	calls := []func(){measured, peer1, peer2}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range calls {
			calls[(i+j)%len(calls)]()
		}
		filtered()
	}
	b.StopTimer()
	q.report(b)
}

// report reports p50 and p99 of each name, prefixed by it ("" for the first).
func (q *queryTimer) report(b *testing.B) {
	for i, name := range q.order {
		d := q.times[name]
		slices.Sort(d)
		prefix := name + "-"
		if i == 0 {
			prefix = ""
		}
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, prefix+"p50-ms")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, prefix+"p99-ms")
	}
}

// BenchmarkSeriesQuery6hPerMinute measures track.series for the last 6 hours per minute of one
// metric (10 series) on the table of seedSeriesBench, with tz and the complete column (migration 006),
// against the functions of migrations 001 and 003 in the same run (001-, 003-; the calls alternate
// in order). The queried metric has no filter, so series reads the metric's totals (migration 003);
// filtered- is the same range with a filter on one of its series ({"service": "svc-3"}), which reads
// the series' rows. It also reports the bytes per rollup row of the minute table.
func BenchmarkSeriesQuery6hPerMinute(b *testing.B) {
	te := seedSeriesBench(b)
	var bytesPerRow float64
	require.NoError(b, te.pool.QueryRow(context.Background(), `SELECT pg_total_relation_size('`+te.schema+`.rollup_minute')::float8 / count(*) FROM `+te.schema+`.rollup_minute`).Scan(&bytesPerRow))
	const args = `('bench-0', now() - interval '6 hours', now(), interval '1 minute'`
	q := &queryTimer{te: te}
	q.loop(b, func() { q.run(b, "006", "time, value, complete", "series"+args+", '{}', 'UTC')", 360) },
		func() { q.run(b, "001", "time, value", "series_001"+args+")", 360) },
		func() { q.run(b, "003", "time, value", "series_003"+args+")", 360) },
		func() {
			q.run(b, "filtered", "time, value, complete", "series"+args+`, '{"service": "svc-3"}', 'UTC')`, 360)
		})
	b.ReportMetric(bytesPerRow, "bytes/row")
}

// BenchmarkSeriesQueryLocalDays90d measures track.series per local day over the last 89 days in
// America/New_York (90 buckets; DST zone, so it reads hour totals: 2,160 rows) on the table of
// seedSeriesBench, against the same call per UTC day and 003's function per UTC day (both read the same
// hour totals) in the same run; filtered- is the New York call with a filter on one series.
func BenchmarkSeriesQueryLocalDays90d(b *testing.B) {
	te := seedSeriesBench(b)
	const args = `('bench-0', now() - interval '89 days', now(), interval '1 day'`
	q := &queryTimer{te: te}
	q.loop(b, func() { q.run(b, "new-york", "time, value, complete", "series"+args+", '{}', 'America/New_York')", 90) },
		func() { q.run(b, "utc", "time, value, complete", "series"+args+", '{}', 'UTC')", 90) },
		func() { q.run(b, "003-utc", "time, value", "series_003"+args+")", 90) },
		func() {
			q.run(b, "filtered", "time, value, complete", "series"+args+`, '{"service": "svc-3"}', 'America/New_York')`, 90)
		})
}

// BenchmarkLivenessPerFlush measures what the liveness records add to a flush: pushes of one point
// (each its own flush transaction, a fresh key each time) from 100 sources with the records
// ("with-liveness") against the same pushes without them ("peer-no-liveness"), alternating; and the
// write the timer makes when nothing is flushed ("idle-write"). The 100 sources are written at their
// first flush only (source_resolution), so a flush adds one row update: the collector's span. Here
// every flush records it; the exporter does so at most once a second (flushLiveness).
func BenchmarkLivenessPerFlush(b *testing.B) {
	te := startExporter(b, nil, func(c *Config) {
		c.FlushInterval = time.Hour // each push flushes at once (num_consumers 1: the batch is full)
		c.QueueConfig.GetOrInsertDefault().NumConsumers = 1
		c.Completeness.LivenessInterval = 30 * time.Second
	})
	te.flushLiveness = 0 // every flush records it (by default, at most one a second does)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute)
	md := pmetric.NewMetrics()
	for i := range 100 {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "svc")
		rm.Resource().Attributes().PutInt("service.instance.id", int64(i))
	}
	dp := func() pmetric.NumberDataPoint {
		m := md.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("flushes")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		return sum.DataPoints().AppendEmpty()
	}()
	dp.SetIntValue(1)
	seq := 0
	push := func(skip bool) time.Duration {
		seq++
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(seq) * time.Microsecond))) // a fresh key
		te.skipLiveness.Store(skip)
		t0 := time.Now()
		require.NoError(b, te.pushMetrics(ctx, md))
		return time.Since(t0)
	}
	push(false) // the sources' first write
	var with, without, idle []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			with = append(with, push(false))
			without = append(without, push(true))
		} else {
			without = append(without, push(true))
			with = append(with, push(false))
		}
		t0 := time.Now()
		require.NoError(b, te.recordLiveness(ctx))
		idle = append(idle, time.Since(t0))
	}
	b.StopTimer()
	te.skipLiveness.Store(false)
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"with-liveness", with}, {"peer-no-liveness", without}, {"idle-write", idle}} {
		slices.Sort(m.d)
		b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds())/1000, m.name+"-p50-ms")
	}
	slices.Sort(with)
	slices.Sort(without)
	b.ReportMetric(float64(with[len(with)/2]-without[len(without)/2])/1000, "liveness-p50-us")
}
