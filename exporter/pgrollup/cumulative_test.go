package pgrollup

import (
	"context"
	"encoding/hex"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/fixtures"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadatatest"
)

// cpt is one point of a cumulative monotonic Sum in a test request.
type cpt struct {
	metric   string
	instance string // service.instance.id; "i-1" when empty
	attrs    map[string]string
	start    time.Time // zero: no start time
	at       time.Time
	value    int64
}

// cumRequest builds a request with one resource per point (service "svc" and the point's
// instance), scope "test", and one cumulative monotonic int Sum per point.
func cumRequest(points ...cpt) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, p := range points {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "svc")
		if p.instance == "" {
			p.instance = "i-1"
		}
		rm.Resource().Attributes().PutStr("service.instance.id", p.instance)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("test")
		m := sm.Metrics().AppendEmpty()
		m.SetName(p.metric)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := s.DataPoints().AppendEmpty()
		if !p.start.IsZero() {
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(p.start))
		}
		dp.SetTimestamp(pcommon.NewTimestampFromTime(p.at))
		dp.SetIntValue(p.value)
		for k, v := range p.attrs {
			dp.Attributes().PutStr(k, v)
		}
	}
	return md
}

func (te *testExporter) pushCum(t testing.TB, points ...cpt) {
	t.Helper()
	require.NoError(t, te.pushMetrics(context.Background(), cumRequest(points...)))
}

// TestCumulativeRules pushes one stream's points, one request per step (a step of several points is
// one request), and checks the total each rule leads to, and that every delta is in the minute of
// its point.
func TestCumulativeRules(t *testing.T) {
	te := startExporter(t, nil)
	t0 := hoursAgo(2)
	s1 := t0.Add(-10 * time.Second) // a process that started 10 s before its first point
	s2 := t0.Add(5 * time.Minute)   // the same process, restarted
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	type point struct {
		start time.Time
		min   int
		value int64
	}
	tests := []struct {
		name  string
		steps [][]point
		// want is the total; perMinute the expected delta of each minute that has one.
		want      float64
		perMinute map[int]float64
	}{
		{"first sight of a recent start counts whole, then differences",
			[][]point{{{s1, 0, 5}}, {{s1, 1, 8}}, {{s1, 2, 12}}}, 12, map[int]float64{0: 5, 1: 3, 2: 4}},
		{"duplicate and late points add 0",
			[][]point{{{s1, 0, 5}}, {{s1, 2, 12}}, {{s1, 1, 8}}, {{s1, 2, 12}, {s1, 0, 5}}}, 12, map[int]float64{0: 5, 2: 7}},
		{"a new start time is a reset counting from 0",
			[][]point{{{s1, 0, 5}}, {{s1, 1, 8}}, {{s2, 6, 3}}, {{s2, 7, 7}}}, 15, map[int]float64{0: 5, 1: 3, 6: 3, 7: 4}},
		{"a lower value is a reset counting from 0",
			[][]point{{{s1, 0, 5}}, {{s1, 1, 8}}, {{s1, 2, 2}}, {{s1, 3, 6}}}, 14, map[int]float64{0: 5, 1: 3, 2: 2, 3: 4}},
		{"a later point of an earlier run adds 0",
			[][]point{{{s1, 0, 5}}, {{s2, 6, 3}}, {{s1, 7, 9}}, {{s2, 8, 4}}}, 9, map[int]float64{0: 5, 6: 3, 8: 1}},
		{"first sight of an old start is a baseline",
			[][]point{{{t0.Add(-2 * time.Hour), 0, 100}}, {{t0.Add(-2 * time.Hour), 1, 130}}}, 30, map[int]float64{1: 30}},
		{"a start just inside the window counts whole",
			[][]point{{{t0.Add(-59 * time.Minute), 0, 100}}, {{t0.Add(-59 * time.Minute), 1, 130}}}, 130, map[int]float64{0: 100, 1: 30}},
		{"no start time is a baseline",
			[][]point{{{time.Time{}, 0, 100}}, {{time.Time{}, 1, 101}}}, 1, map[int]float64{1: 1}},
		{"one request, out of order, with a reset",
			[][]point{{{s1, 2, 12}, {s2, 7, 2}, {s1, 0, 5}, {s1, 1, 8}, {s2, 6, 1}}}, 14, map[int]float64{0: 5, 1: 3, 2: 4, 6: 1, 7: 1}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metric := fmt.Sprintf("rule-%d", i)
			for _, step := range tt.steps {
				var pts []cpt
				for _, p := range step {
					pts = append(pts, cpt{metric: metric, start: p.start, at: at(p.min).Add(30 * time.Second), value: p.value})
				}
				te.pushCum(t, pts...)
			}
			assert.Equal(t, tt.want, te.total(t, "minutely", metric))
			assert.Equal(t, tt.want, te.total(t, "hourly", metric))
			for min := -1; min <= 10; min++ {
				assert.Equal(t, tt.perMinute[min], te.bucket(t, "minutely", metric, at(min)), "minute %d", min)
			}
		})
	}
	assertTotalsAgree(t, te.pool, te.schema)
	var streams int
	require.NoError(t, te.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+te.schema+".cumulative_streams").Scan(&streams))
	assert.Equal(t, len(tests), streams, "one state row per stream")
	// Every point has exactly one outcome.
	points := 0
	for _, tt := range tests {
		for _, step := range tt.steps {
			points += len(step)
		}
	}
	m, err := te.tel.GetMetric("otelcol_exporter_pgrollup_cumulative_points")
	require.NoError(t, err)
	var outcomes int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		outcomes += dp.Value
	}
	assert.EqualValues(t, points, outcomes)
}

// TestCumulativeInitialValue checks keep and drop.
func TestCumulativeInitialValue(t *testing.T) {
	t0 := hoursAgo(2)
	for _, tt := range []struct {
		mode        string
		recent, old float64
	}{
		{InitialValueKeep, 10, 10},
		{InitialValueDrop, 0, 0},
		{InitialValueAuto, 10, 0},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			te := startExporter(t, nil, func(c *Config) { c.Cumulative.InitialValue = tt.mode })
			te.pushCum(t,
				cpt{metric: "recent", start: t0.Add(-time.Minute), at: t0, value: 10},
				cpt{metric: "old", start: t0.Add(-3 * time.Hour), at: t0, value: 10})
			assert.Equal(t, tt.recent, te.total(t, "minutely", "recent"))
			assert.Equal(t, tt.old, te.total(t, "minutely", "old"))
		})
	}
}

// TestCumulativeStreamIdentity: streams differing in any resource attribute, the scope, the metric
// or a point attribute have their own state, while the rollup series drops the instance.
func TestCumulativeStreamIdentity(t *testing.T) {
	te := startExporter(t, nil)
	t0 := hoursAgo(2)
	start := t0.Add(-time.Minute)
	// Two instances of one service, counting 10 then 15 each: 30 in one series.
	for i, v := range []int64{10, 15} {
		at := t0.Add(time.Duration(i) * time.Minute)
		te.pushCum(t, cpt{metric: "ids", instance: "a", start: start, at: at, value: v},
			cpt{metric: "ids", instance: "b", start: start, at: at, value: v})
	}
	assert.Equal(t, 30.0, te.total(t, "minutely", "ids"))
	var series, streams int
	ctx := context.Background()
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+".series WHERE metric = 'ids'").Scan(&series))
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+".cumulative_streams").Scan(&streams))
	assert.Equal(t, 1, series)
	assert.Equal(t, 2, streams)
}

// streamKeyOf returns the stream key of the first point of md.
func streamKeyOf(t *testing.T, md pmetric.Metrics) [16]byte {
	t.Helper()
	p := newParser([]string{"service.name"})
	it, _ := p.parse(md, time.Date(2026, 11, 22, 12, 1, 0, 0, time.UTC), 24*time.Hour)
	require.NotNil(t, it)
	require.NotEmpty(t, it.cum)
	return it.cum[0].stream
}

// TestStreamKeyStable pins the stream key (stored in Postgres: a changed encoding would make every
// stream a first sight again) and checks what it depends on.
func TestStreamKeyStable(t *testing.T) {
	base := func() pmetric.Metrics {
		md := fixtures.FullRequest()
		md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return md
	}
	key := streamKeyOf(t, base())
	assert.Equal(t, "81cd0604c71c6f1ce874444b479fe03c", hex.EncodeToString(key[:]))

	same := map[string]func(md pmetric.Metrics){
		"value and times": func(md pmetric.Metrics) {
			dp := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
			dp.SetIntValue(99)
			dp.SetTimestamp(dp.Timestamp() + 1)
			dp.SetStartTimestamp(dp.StartTimestamp() + 1)
		},
		"attribute order": func(md pmetric.Metrics) {
			attrs := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes()
			raw := attrs.AsRaw()
			attrs.Clear()
			for _, k := range []string{"tags", "shard", "raw", "plan", "nested"} {
				require.NoError(t, attrs.PutEmpty(k).FromRaw(raw[k]))
			}
			res := md.ResourceMetrics().At(0).Resource().Attributes()
			res.Clear()
			res.PutStr("service.instance.id", "pod-1")
			res.PutStr("service.name", "login")
		},
		"unit and description": func(md pmetric.Metrics) {
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
			m.SetUnit("{signup}")
			m.SetDescription("signups")
		},
	}
	for name, change := range same {
		md := base()
		change(md)
		assert.Equal(t, key, streamKeyOf(t, md), name)
	}
	differs := map[string]func(md pmetric.Metrics){
		"instance": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).Resource().Attributes().PutStr("service.instance.id", "pod-2")
		},
		"host":          func(md pmetric.Metrics) { md.ResourceMetrics().At(0).Resource().Attributes().PutStr("host.name", "h") },
		"scope name":    func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().SetName("other") },
		"scope version": func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().SetVersion("v2") },
		"scope attribute": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Attributes().PutStr("a", "b")
		},
		"metric": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetName("other")
		},
		"point attribute type": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes().PutStr("shard", "7")
		},
	}
	seen := map[[16]byte]string{key: "base"}
	for name, change := range differs {
		md := base()
		change(md)
		k := streamKeyOf(t, md)
		if other, dup := seen[k]; dup {
			t.Errorf("%s has the key of %s", name, other)
		}
		seen[k] = name
	}
}

// TestCumulativeReplayAndRollback: a replay of a committed request adds 0 and leaves the state
// alone; a request whose transaction rolled back is computed again, on its retry, from the state
// as committed.
func TestCumulativeReplayAndRollback(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	t0 := hoursAgo(2)
	start := t0.Add(-time.Minute)
	first := cumRequest(cpt{metric: "replay", start: start, at: t0, value: 10})
	require.NoError(t, te.pushMetrics(ctx, first))
	second := cumRequest(cpt{metric: "replay", start: start, at: t0.Add(time.Minute), value: 25})
	require.NoError(t, te.pushMetrics(ctx, second))
	require.NoError(t, te.pushMetrics(ctx, first), "a replay of the first request")
	require.NoError(t, te.pushMetrics(ctx, second), "a replay of the second request")
	assert.Equal(t, 25.0, te.total(t, "minutely", "replay"))

	// Make the next flush fail after the stream step, in the rollup upsert: the transaction rolls
	// back, state included.
	_, err := te.pool.Exec(ctx, `CREATE FUNCTION `+te.schema+`.fail() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'injected failure'; END$$;
CREATE TRIGGER fail BEFORE INSERT ON `+te.schema+`.rollup_minute FOR EACH ROW EXECUTE FUNCTION `+te.schema+`.fail()`)
	require.NoError(t, err)
	third := cumRequest(cpt{metric: "replay", start: start, at: t0.Add(2 * time.Minute), value: 40})
	require.ErrorContains(t, te.pushMetrics(ctx, third), "injected failure")
	var last float64
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT last_value FROM "+te.schema+".cumulative_streams").Scan(&last))
	assert.Equal(t, 25.0, last, "the state rolled back with the rollups")
	_, err = te.pool.Exec(ctx, "DROP TRIGGER fail ON "+te.schema+".rollup_minute")
	require.NoError(t, err)
	require.NoError(t, te.pushMetrics(ctx, third), "the retry")
	require.NoError(t, te.pushMetrics(ctx, third), "a replay of the retry")
	assert.Equal(t, 40.0, te.total(t, "minutely", "replay"))
	assert.Equal(t, 15.0, te.bucket(t, "minutely", "replay", t0.Add(2*time.Minute)))
	metadatatest.AssertEqualExporterPgrollupCumulativePoints(t, te.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("outcome", "initial")), Value: 1},
		{Attributes: attribute.NewSet(attribute.String("outcome", "delta")), Value: 2},
	}, metricdatatest.IgnoreTimestamp())
}

// TestCumulativeTwoExporters: two exporters (two collectors) on the same schema get the exports of
// the same streams alternately and concurrently, in requests that hold every stream in a random
// order, some sent twice. Each stream's total is its last cumulative value, exactly.
func TestCumulativeTwoExporters(t *testing.T) {
	te1 := startExporter(t, nil)
	te2 := startExporter(t, te1.sc)
	exporters := []*testExporter{te1, te2}
	const streams, exports = 24, 40
	t0 := hoursAgo(2)
	start := t0.Add(-time.Second)
	rng := rand.New(rand.NewPCG(14, 14))
	values := make([][]int64, streams) // values[s][k]: stream s's cumulative value at export k
	for s := range values {
		values[s] = make([]int64, exports)
		var v int64
		for k := range values[s] {
			v += int64(rng.IntN(5))
			values[s][k] = v
		}
	}
	requests := make([]pmetric.Metrics, exports)
	for k := range requests {
		var pts []cpt
		for _, s := range rng.Perm(streams) {
			pts = append(pts, cpt{metric: "two", instance: fmt.Sprintf("i-%d", s%6), attrs: map[string]string{"s": fmt.Sprint(s)},
				start: start, at: t0.Add(time.Duration(k) * 10 * time.Second), value: values[s][k]})
		}
		requests[k] = cumRequest(pts...)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for k, md := range requests {
		for c := range 1 + k%3/2 { // every third export is sent twice, to both exporters
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				assert.NoError(t, exporters[(k+c)%2].pushMetrics(context.Background(), md))
			}()
		}
	}
	wg.Wait()
	var want float64
	for s := range values {
		want += float64(values[s][exports-1])
	}
	assert.Equal(t, want, te1.total(t, "minutely", "two"))
	assert.Equal(t, want, te1.total(t, "daily", "two"))
	assertTotalsAgree(t, te1.pool, te1.schema)
	var n int
	require.NoError(t, te1.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+te1.schema+".cumulative_streams").Scan(&n))
	assert.Equal(t, streams, n)
}

// TestCumulativeStaleness: retention removes the state of streams not written for max_staleness,
// and only those; the next point of an expired stream is a first sight again.
func TestCumulativeStaleness(t *testing.T) {
	te := startExporter(t, nil, func(c *Config) { c.Cumulative.MaxStaleness = time.Hour })
	ctx := context.Background()
	clock := time.Now().UTC()
	te.now = func() time.Time { return clock }
	t0 := hoursAgo(2)
	old := t0.Add(-3 * time.Hour) // started long ago: a first sight is a baseline
	te.pushCum(t, cpt{metric: "stale", start: old, at: t0, value: 100}, cpt{metric: "live", start: old, at: t0, value: 7})
	clock = clock.Add(50 * time.Minute)
	te.pushCum(t, cpt{metric: "live", start: old, at: t0.Add(time.Minute), value: 9})
	clock = clock.Add(20 * time.Minute) // "stale" not written for 70 min, "live" for 20
	require.NoError(t, te.runRetention(ctx))
	var n int
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+".cumulative_streams").Scan(&n))
	assert.Equal(t, 1, n)
	metadatatest.AssertEqualExporterPgrollupStreamsExpired(t, te.tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp())
	te.pushCum(t, cpt{metric: "stale", start: old, at: t0.Add(2 * time.Minute), value: 150},
		cpt{metric: "live", start: old, at: t0.Add(2 * time.Minute), value: 12})
	assert.Zero(t, te.total(t, "minutely", "stale"), "a baseline again")
	assert.Equal(t, 5.0, te.total(t, "minutely", "live"))
}

// TestCumulativeAdvancePlan: the UPDATE of the stream rows walks the keys in order (a nested loop
// over the sorted keys, the rows found through the primary key), so that every collector locks
// them in the same order, however large the table. A hash join would lock them in physical order.
func TestCumulativeAdvancePlan(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	_, err := te.pool.Exec(ctx, `INSERT INTO `+te.schema+`.cumulative_streams (key, series_id, start_unix_nano, last_unix_nano, last_value, seen_at)
SELECT gen_random_uuid(), 1, 1, 1, 1, now() FROM generate_series(1, 50000)`)
	require.NoError(t, err)
	_, err = te.pool.Exec(ctx, "ANALYZE "+te.schema+".cumulative_streams")
	require.NoError(t, err)
	keys := make([][16]byte, 5000)
	for i := range keys {
		keys[i][0], keys[i][1] = byte(i>>8), byte(i)
	}
	ints := make([]int64, len(keys))
	vals := make([]float64, len(keys))
	tx, err := te.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range []string{"SET LOCAL enable_hashjoin = off", "SET LOCAL enable_mergejoin = off"} {
		_, err := tx.Exec(ctx, q)
		require.NoError(t, err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+te.sqls.AdvanceStreams, keys, ints, ints, ints, ints, ints, vals, time.Now())
	require.NoError(t, err)
	var plan string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan += line + "\n"
	}
	require.NoError(t, rows.Err())
	t.Log(plan)
	assert.Regexp(t, `(?s)Nested Loop.*Sort.*Sort Key: u(_1)?\.k.*Index Scan using cumulative_streams_pkey`, plan)
	assert.NotContains(t, plan, "Hash")
}

// TestCumulativeRulesOrderFree: however the exports of a stream's runs are split into flushes and
// reordered, as long as every point of a run arrives before the first point of the next run, the
// deltas add up to the last value of every run (the first run's first sight counts whole, as a
// recent start does). Duplicates never count.
func TestCumulativeRulesOrderFree(t *testing.T) {
	cfg := createDefaultConfig().(*Config).Cumulative
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixNano()
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 14))
		var st streamState
		have := false
		var counted, want float64
		for run := range 1 + rng.IntN(4) {
			start := base + int64(run)*int64(time.Hour)
			var pts []cumPoint
			var v float64
			for k := range 1 + rng.IntN(20) {
				v += float64(rng.IntN(10))
				pts = append(pts, cumPoint{start: start, ts: start + int64(k+1)*int64(time.Second), value: v})
			}
			want += v
			// Duplicates, then a random order, then random flushes.
			for range rng.IntN(5) {
				pts = append(pts, pts[rng.IntN(len(pts))])
			}
			rng.Shuffle(len(pts), func(i, j int) { pts[i], pts[j] = pts[j], pts[i] })
			for len(pts) > 0 {
				n := 1 + rng.IntN(len(pts))
				flush := slices.Clone(pts[:n])
				pts = pts[n:]
				slices.SortFunc(flush, cmpCumTime)
				var r rulesRun
				st = r.apply(cfg, flush, st, have)
				have = true
				for _, d := range r.deltas {
					counted += d.value
				}
			}
		}
		require.Equal(t, want, counted, "seed %d", seed)
	}
}
