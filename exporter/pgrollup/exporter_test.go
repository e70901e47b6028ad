package pgrollup

import (
	"context"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/identity"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadatatest"
	"github.com/trackhq/track/internal/pgtest"
)

func TestExactTotals(t *testing.T) {
	te := startExporter(t, nil)
	base := hoursAgo(3)
	const workers, requests, perRequest = 8, 25, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for r := range requests {
				points := make([]pt, perRequest)
				for i := range points {
					points[i] = pt{
						metric:  "new-signup",
						service: []string{"login", "web"}[i%2],
						attrs:   map[string]any{"plan": []string{"free", "pro", "team"}[rng.IntN(3)]},
						at:      base.Add(time.Duration(rng.IntN(3*3600)) * time.Second),
						value:   float64(1 + (w+r+i)%3),
						isInt:   true,
					}
				}
				assert.NoError(t, te.pushMetrics(context.Background(), request(points...)))
			}
		}()
	}
	wg.Wait()
	var want float64
	for w := range workers {
		for r := range requests {
			for i := range perRequest {
				want += float64(1 + (w+r+i)%3)
			}
		}
	}
	for _, view := range []string{"minutely", "hourly", "daily"} {
		assert.Equal(t, want, te.total(t, view, "new-signup"), view)
	}
	// Copies of a service (different service.instance.id) add up into one series per attribute set.
	var n int
	require.NoError(t, te.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+te.schema+".series").Scan(&n))
	assert.Equal(t, 6, n, "2 services x 3 plans")
}

func TestBucketEdges(t *testing.T) {
	te := startExporter(t, nil)
	noon := hoursAgo(2)
	te.push(t,
		pt{metric: "edge", service: "s", at: noon.Add(time.Minute - time.Millisecond), value: 1, isInt: true},
		pt{metric: "edge", service: "s", at: noon.Add(time.Minute), value: 10, isInt: true},
		pt{metric: "edge", service: "s", at: noon.Add(time.Hour - time.Nanosecond), value: 100, isInt: true},
		pt{metric: "edge", service: "s", at: noon.Add(time.Hour), value: 1000, isInt: true},
	)
	assert.Equal(t, 1.0, te.bucket(t, "minutely", "edge", noon), "12:00:59.999 counts into 12:00")
	assert.Equal(t, 10.0, te.bucket(t, "minutely", "edge", noon.Add(time.Minute)), "12:01:00.000 counts into 12:01")
	assert.Equal(t, 100.0, te.bucket(t, "minutely", "edge", noon.Add(59*time.Minute)))
	assert.Equal(t, 111.0, te.bucket(t, "hourly", "edge", noon))
	assert.Equal(t, 1000.0, te.bucket(t, "hourly", "edge", noon.Add(time.Hour)))
}

func TestMinutesSumToHoursSumToDays(t *testing.T) {
	te := startExporter(t, nil)
	rng := rand.New(rand.NewPCG(7, 7))
	start := hoursAgo(72)
	var points []pt
	for range 3000 {
		points = append(points, pt{
			metric: "cards-checked", service: "payment",
			attrs: map[string]any{"result": []string{"ok", "fraudulent"}[rng.IntN(2)]},
			at:    start.Add(time.Duration(rng.Int64N(int64(70 * time.Hour)))),
			value: float64(rng.IntN(5)), isInt: true,
		})
	}
	for i := 0; i < len(points); i += 500 {
		te.push(t, points[i:i+500]...)
	}
	ctx := context.Background()
	// Per (series, hour): the minutes add up to the hour; per (series, day): the hours to the day.
	var bad int
	require.NoError(t, te.pool.QueryRow(ctx, `
SELECT count(*) FROM (
  SELECT h.series_id, h.time, h.value, sum(m.value) AS m
    FROM `+te.schema+`.rollup_hour h JOIN `+te.schema+`.rollup_minute m
      ON m.series_id = h.series_id AND date_trunc('hour', m.time) = h.time
   GROUP BY 1, 2, 3) x WHERE x.value <> x.m`).Scan(&bad))
	assert.Zero(t, bad, "hours that differ from the sum of their minutes")
	require.NoError(t, te.pool.QueryRow(ctx, `
SELECT count(*) FROM (
  SELECT d.series_id, d.time, d.value, sum(h.value) AS h
    FROM `+te.schema+`.rollup_day d JOIN `+te.schema+`.rollup_hour h
      ON h.series_id = d.series_id AND date_trunc('day', h.time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' = d.time
   GROUP BY 1, 2, 3) x WHERE x.value <> x.h`).Scan(&bad))
	assert.Zero(t, bad, "days that differ from the sum of their hours")
	m, h, d := te.total(t, "minutely", "cards-checked"), te.total(t, "hourly", "cards-checked"), te.total(t, "daily", "cards-checked")
	assert.Equal(t, m, h)
	assert.Equal(t, h, d)
	assert.Positive(t, m)
	assertTotalsAgree(t, te.pool, te.schema)
}

func TestSeriesZeroFilledAndFiltered(t *testing.T) {
	te := startExporter(t, nil)
	now := time.Now().UTC()
	since := now.Add(-6 * time.Hour)
	at := now.Truncate(time.Minute).Add(-30 * time.Minute)
	te.push(t,
		pt{metric: "fraudulent-card", service: "payment", attrs: map[string]any{"country": "DE"}, at: at, value: 2, isInt: true},
		pt{metric: "fraudulent-card", service: "payment", attrs: map[string]any{"country": "FR"}, at: at, value: 3, isInt: true},
		pt{metric: "fraudulent-card", service: "checkout", attrs: map[string]any{"country": "DE"}, at: at.Add(-time.Hour), value: 5, isInt: true},
		pt{metric: "other", service: "payment", at: at, value: 100, isInt: true},
	)

	rows := te.series(t, "fraudulent-card", since, now, "1 minute", "")
	require.GreaterOrEqual(t, len(rows), 360)
	require.LessOrEqual(t, len(rows), 361)
	var sum float64
	nonzero := map[time.Time]float64{}
	for i, r := range rows {
		if i > 0 {
			require.Equal(t, time.Minute, r.At.Sub(rows[i-1].At), "one row per step")
		}
		sum += r.Value
		if r.Value != 0 {
			nonzero[r.At] = r.Value
		}
	}
	assert.Equal(t, 10.0, sum)
	assert.Equal(t, map[time.Time]float64{at: 5, at.Add(-time.Hour): 5}, nonzero, "every other minute reads 0")

	_, err := te.pool.Exec(context.Background(), "SELECT * FROM "+te.schema+".series('never-counted', now() - interval '1 hour', now(), interval '1 minute')")
	require.ErrorContains(t, err, `no metric named "never-counted" has been counted`, "a typo is not a dead metric")

	tests := []struct {
		filter string
		want   float64
	}{
		{`{}`, 10},
		{`{"country": "DE"}`, 7},
		{`{"service": "payment"}`, 5},
		{`{"service": "payment", "country": "DE"}`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			var got float64
			for _, r := range te.series(t, "fraudulent-card", since, now, "1 hour", tt.filter) {
				got += r.Value
			}
			assert.Equal(t, tt.want, got)
		})
	}
	_, err = te.pool.Exec(context.Background(), "SELECT * FROM "+te.schema+".series('fraudulent-card', now() - interval '1 hour', now(), interval '1 minute', '{\"country\": \"IT\"}')")
	require.ErrorContains(t, err, `filter {"country": "IT"} matches no series`, "a filter no series matches is not a dead series")
}

func TestSeriesPicksFinestResolutionHoldingTheRange(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	te.push(t, pt{metric: "m", service: "s", at: now.Add(-2 * time.Hour), value: 1, isInt: true})
	// Make each table tell which one was read: add 10 to the hour and 100 to the day rollups.
	_, err := te.pool.Exec(ctx, "UPDATE "+te.schema+".rollup_hour SET value = value + 10; UPDATE "+te.schema+".rollup_day SET value = value + 100")
	require.NoError(t, err)
	recomputeTotals(t, te.pool, te.schema)
	sum := func(since time.Time, step string) float64 {
		var s float64
		for _, r := range te.series(t, "m", since, now, step, "") {
			s += r.Value
		}
		return s
	}
	assert.Equal(t, 1.0, sum(now.Add(-6*time.Hour), "1 minute"), "6 hours: minutes")
	assert.Equal(t, 1.0, sum(now.Add(-13*24*time.Hour), "1 day"), "13 days fit the 14-day minute retention")
	assert.Equal(t, 11.0, sum(now.Add(-6*7*24*time.Hour), "1 day"), "6 weeks: hours")
	assert.Equal(t, 101.0, sum(now.Add(-365*24*time.Hour), "7 days"), "a year: days")

	_, err = te.pool.Exec(ctx, "SELECT * FROM "+te.schema+".series('m', now(), now() - interval '1 hour', '1 minute')")
	require.ErrorContains(t, err, "must be after since")
	_, err = te.pool.Exec(ctx, "SELECT * FROM "+te.schema+".series('m', now() - interval '1 hour', now(), '0 minutes')")
	require.ErrorContains(t, err, "step must be a positive interval")
}

func TestTwoExportersSameSeriesConcurrently(t *testing.T) {
	sc := pgtest.NewSchema(t)
	a := startExporter(t, sc)
	b := startExporter(t, sc)
	at := hoursAgo(1)
	const perExporter, pushes = 4, 30
	var wg sync.WaitGroup
	for x, e := range []*testExporter{a, b} {
		for g := range perExporter {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range pushes {
					var points []pt
					// Same series in both exporters, in a different order each time, plus new series
					// that both create at once.
					for s := range 20 {
						k := (s*7 + g + i) % 20
						// Each sender is its own instance: distinct requests never share their bytes.
						points = append(points, pt{metric: "shared", service: "svc", instance: fmt.Sprintf("%d-%d", x, g),
							attrs: map[string]any{"k": k, "round": i % 5}, at: at.Add(time.Duration(k)*time.Minute + time.Duration(i)*time.Millisecond), value: 1, isInt: true})
					}
					assert.NoError(t, e.pushMetrics(context.Background(), request(points...)))
				}
			}()
		}
	}
	wg.Wait()
	want := float64(2 * perExporter * pushes * 20)
	assert.Equal(t, want, a.total(t, "minutely", "shared"))
	assert.Equal(t, want, a.total(t, "hourly", "shared"))
	var n int
	require.NoError(t, a.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+sc.Name+".series").Scan(&n))
	assert.Equal(t, 100, n, "20 k x 5 rounds, each series once")
	assertTotalsAgree(t, a.pool, a.schema)
}

func TestRetryAfterCommitCountsOnce(t *testing.T) {
	sc := pgtest.NewSchema(t)
	te := startExporter(t, sc)
	at := hoursAgo(1)
	md := request(pt{metric: "paid", service: "billing", at: at, value: 3, isInt: true},
		pt{metric: "paid", service: "billing", at: at.Add(time.Second), value: 4, isInt: true})
	ctx := context.Background()
	require.NoError(t, te.pushMetrics(ctx, md))
	// An exporterhelper retry of the same request after its commit's acknowledgement was lost.
	require.NoError(t, te.pushMetrics(ctx, md))
	// The same request twice within one flush (an OTLP client re-sent it).
	var wg sync.WaitGroup
	md2 := request(pt{metric: "paid", service: "billing", at: at, value: 100, isInt: true})
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); assert.NoError(t, te.pushMetrics(ctx, md2)) }()
	}
	wg.Wait()
	// A persistent queue replaying it after a crash: another exporter, same schema.
	other := startExporter(t, sc)
	require.NoError(t, other.pushMetrics(ctx, md))
	assert.Equal(t, 107.0, te.total(t, "minutely", "paid"))
	assert.Equal(t, 107.0, te.total(t, "daily", "paid"))

	metadatatest.AssertEqualExporterPgrollupItemsDuplicate(t, te.tel, []metricdata.DataPoint[int64]{{Value: 2}},
		metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualExporterPgrollupItemsDuplicate(t, other.tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp())
}

func TestCancelledPushIsRetriedExactlyOnce(t *testing.T) {
	te := startExporter(t, nil, func(c *Config) { c.FlushInterval = 200 * time.Millisecond })
	at := hoursAgo(1)
	md := request(pt{metric: "c", service: "s", at: at, value: 1, isInt: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	err := te.pushMetrics(ctx, md)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, te.pushMetrics(context.Background(), md))
	require.NoError(t, te.pushMetrics(context.Background(), md))
	assert.Equal(t, 1.0, te.total(t, "minutely", "c"))
}

func TestRefusals(t *testing.T) {
	sc := pgtest.NewSchema(t)
	core, logs := observer.New(zap.WarnLevel)
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(sc.ServerDSN)
	cfg.Schema = sc.Name
	cfg.FlushInterval = 10 * time.Millisecond
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)
	e, err := newExporter(cfg, set)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, e.start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(t, e.shutdown(ctx)) }()
	pool := sc.Pool(t)

	now := time.Now().UTC()
	ok := now.Add(-time.Hour)
	tests := []struct {
		reason string
		point  pt
	}{
		{"unspecified_temporality", pt{metric: "untemporal", kind: "unspecified", at: ok, value: 1}},
		{"non_monotonic", pt{metric: "updown", kind: "nonmono", at: ok, value: 1}},
		{"gauge", pt{metric: "temp", kind: "gauge", at: ok, value: 1}},
		{"histogram", pt{metric: "latency", kind: "histogram", at: ok}},
		{"nan", pt{metric: "nan", at: ok, value: math.NaN()}},
		{"inf", pt{metric: "inf", at: ok, value: math.Inf(1)}},
		{"negative", pt{metric: "neg", at: ok, value: -1}},
		{"too_old", pt{metric: "old", at: now.Add(-4 * 365 * 24 * time.Hour), value: 1}},
		{"future", pt{metric: "future", at: now.Add(2 * time.Hour), value: 1}},
		{"name_too_long", pt{metric: strings.Repeat("m", maxNameBytes+1), at: ok, value: 1}},
		{"too_large", pt{metric: "huge", at: ok, value: maxDelta * 2}},
	}
	var points []pt
	var want []metricdata.DataPoint[int64]
	for _, tt := range tests {
		tt.point.service = "svc"
		// Twice each: still one log line per metric name.
		points = append(points, tt.point, tt.point)
		want = append(want, metricdata.DataPoint[int64]{
			Attributes: attribute.NewSet(attribute.String("reason", tt.reason)), Value: 2})
	}
	good := pt{metric: "good", service: "svc", at: ok, value: 5}
	points = append(points, good)
	require.NoError(t, e.pushMetrics(ctx, request(points...)), "refusals never fail the request")
	require.NoError(t, e.pushMetrics(ctx, request(points[:2]...)), "a request with nothing countable succeeds")

	var got float64
	require.NoError(t, pool.QueryRow(ctx, "SELECT coalesce(sum(value), 0) FROM "+sc.Name+".minutely").Scan(&got))
	assert.Equal(t, 5.0, got, "only the good point is written")
	want[0].Value = 4 // the points without temporality were pushed twice
	metadatatest.AssertEqualExporterPgrollupPointsRefused(t, tel, want, metricdatatest.IgnoreTimestamp())

	assert.Equal(t, len(tests), logs.Len(), "one log line per metric name")
	untemporal := logs.FilterField(zap.String("metric", "untemporal")).All()
	require.Len(t, untemporal, 1)
	assert.Contains(t, untemporal[0].ContextMap()["error"], "delta or cumulative temporality")
}

func TestRetention(t *testing.T) {
	te := startExporter(t, nil, func(c *Config) {
		c.Retention.Minute = Period(2 * time.Hour)
		c.Retention.Hour = Period(2 * day)
		c.Retention.Day = Period(10 * day)
		c.DedupWindow = time.Hour
	})
	ctx := context.Background()
	clock := time.Now().UTC().Truncate(time.Hour)
	te.now = func() time.Time { return clock }
	t0 := clock.Add(-30 * time.Minute)
	md := request(pt{metric: "r", service: "s", at: t0, value: 1, isInt: true})
	require.NoError(t, te.pushMetrics(ctx, md))

	count := func(table string) int {
		var n int
		require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+"."+table).Scan(&n))
		return n
	}
	// The seeded history's span (it ended when the schema was migrated) goes after the longest
	// retention (10 days here), the source of the push when it was not seen for retention::minute.
	seeded := func() int {
		var n int
		require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+".collector_spans WHERE collector = ''").Scan(&n))
		return n
	}
	steps := []struct {
		advance                 time.Duration
		minutes, hours, days, k int
		spans, sources          int
	}{
		{0, 1, 1, 1, 1, 1, 1},
		{89 * time.Minute, 1, 1, 1, 0, 1, 1},    // 1h59m later: the key (1h window) is gone, the minute stays
		{2 * time.Minute, 0, 1, 1, 0, 1, 1},     // the minute bucket ended more than 2h ago
		{2 * 24 * time.Hour, 0, 0, 1, 0, 1, 0},  // the hour bucket; the source was not seen for 2h
		{10 * 24 * time.Hour, 0, 0, 0, 0, 0, 0}, // the day bucket, and the spans
		{0, 0, 0, 0, 0, 0, 0},                   // idempotent
	}
	for i, s := range steps {
		clock = clock.Add(s.advance)
		require.NoError(t, te.runRetention(ctx))
		assert.Equal(t, s.minutes, count("rollup_minute"), "step %d minute", i)
		assert.Equal(t, s.hours, count("rollup_hour"), "step %d hour", i)
		assert.Equal(t, s.days, count("rollup_day"), "step %d day", i)
		assert.Equal(t, [3]int{s.minutes, s.hours, s.days}, [3]int{count("total_minute"), count("total_hour"), count("total_day")}, "step %d totals", i)
		assert.Equal(t, s.k, count("item_keys"), "step %d keys", i)
		assert.Equal(t, [2]int{s.spans, s.sources}, [2]int{seeded(), count("source_seen")}, "step %d liveness records", i)
	}
	// Many expired rows go in several small batches.
	_, err := te.pool.Exec(ctx, "INSERT INTO "+te.schema+".rollup_minute SELECT 1, $1::timestamptz - make_interval(mins => g), 1 FROM generate_series(1, 12000) g",
		clock.Add(-3*time.Hour))
	require.NoError(t, err)
	require.NoError(t, te.runRetention(ctx))
	assert.Equal(t, 0, count("rollup_minute"))
	metadatatest.AssertEqualExporterPgrollupRetentionDeleted(t, te.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("resolution", "minute")), Value: 12001},
		{Attributes: attribute.NewSet(attribute.String("resolution", "hour")), Value: 1},
		{Attributes: attribute.NewSet(attribute.String("resolution", "day")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())

	// Points that fall outside a resolution's retention are not written to it.
	te.now = time.Now
	old := time.Now().UTC().Add(-5 * time.Hour)
	te.push(t, pt{metric: "late", service: "s", at: old, value: 1, isInt: true})
	assert.Zero(t, te.total(t, "minutely", "late"))
	assert.Equal(t, 1.0, te.total(t, "hourly", "late"))
}

func TestMigrationsConcurrentAndIdempotent(t *testing.T) {
	sc := pgtest.NewSchema(t)
	var wg sync.WaitGroup
	exps := make([]*testExporter, 3)
	for i := range exps {
		wg.Add(1)
		go func() { defer wg.Done(); exps[i] = startExporter(t, sc) }()
	}
	wg.Wait()
	var n, maxV int
	require.NoError(t, exps[0].pool.QueryRow(context.Background(),
		"SELECT count(*), max(version) FROM "+sc.Name+".schema_migrations").Scan(&n, &maxV))
	migs, err := schema.Load(sc.Name)
	require.NoError(t, err)
	assert.Equal(t, len(migs), n)
	assert.Equal(t, migs[len(migs)-1].Version, maxV)
	// A collector that does not migrate starts on a migrated schema. On an empty one it starts too,
	// but refuses pushes (retryably) until the owner has migrated it.
	startExporter(t, sc, func(c *Config) { c.MigrateOnStart = false })
	empty := pgtest.NewSchema(t)
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(empty.ServerDSN)
	cfg.Schema = empty.Name
	cfg.MigrateOnStart = false
	e, err := newExporter(cfg, metadatatest.NewSettings(componenttest.NewTelemetry()))
	require.NoError(t, err)
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	md := request(pt{metric: "m", service: "s", at: time.Now().Add(-time.Minute), value: 1})
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = e.pushMetrics(short, md)
	require.ErrorIs(t, err, ErrNotConnected)
	require.ErrorIs(t, err, ErrSchemaOutdated)
	assert.False(t, consumererror.IsPermanent(err))
	owner := startExporter(t, empty)
	require.Eventually(t, func() bool { return e.pushMetrics(context.Background(), md) == nil }, 20*time.Second, 50*time.Millisecond)
	assert.Equal(t, 1.0, owner.total(t, "minutely", "m"))
	require.NoError(t, e.shutdown(context.Background()))
}

func TestIdentity(t *testing.T) {
	p := newParser([]string{"service.name", "deployment.environment"})
	md := request(pt{metric: "m", service: "svc", attrs: map[string]any{"b": "x\"y", "a": 1, "c": true}, at: time.Now(), value: 1})
	md.ResourceMetrics().At(0).Resource().Attributes().PutStr("deployment.environment", "prod")
	md.ResourceMetrics().At(0).Resource().Attributes().PutStr("host.name", "dropped")
	it, _ := p.parse(md, time.Now(), time.Hour)
	require.NotNil(t, it)
	require.Len(t, it.rows, 1)
	for k := range it.rows {
		metric, service, attrs := identity.Split(k.series)
		assert.Equal(t, "m", metric)
		assert.Equal(t, "svc", service)
		assert.JSONEq(t, `{"a":1,"b":"x\"y","c":true,"deployment.environment":"prod"}`, attrs)
	}
}

// TestSeriesLookupKeys: once a series is cached, its points are found by their lookup key. The same
// series sent with its attributes in another order, or with a kept resource attribute, resolves to
// the one series row; series whose attributes would run together without length prefixes, or
// differ in a value's type (string or number), stay apart. Each push is checked twice, the second time through
// the cache.
func TestSeriesLookupKeys(t *testing.T) {
	te := startExporter(t, nil, func(c *Config) { c.KeepResourceAttributes = []string{"service.name", "env"} })
	at := time.Now().UTC().Add(-time.Minute)
	ordered := func(md pmetric.Metrics, kvs ...any) pmetric.Metrics {
		attrs := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes()
		attrs.Clear()
		for i := 0; i < len(kvs); i += 2 {
			require.NoError(t, attrs.PutEmpty(kvs[i].(string)).FromRaw(kvs[i+1]))
		}
		return md
	}
	one := func(kvs ...any) pmetric.Metrics {
		return ordered(request(pt{metric: "lk", service: "svc", at: at, value: 1}), kvs...)
	}
	withEnv := one("a", "x", "b", "y")
	withEnv.ResourceMetrics().At(0).Resource().Attributes().PutStr("env", "prod")
	cases := []pmetric.Metrics{
		one("a", "x", "b", "y"),
		one("b", "y", "a", "x"), // same series as the first
		one("a", "xb", "", "y"), // would run together with the first without length prefixes
		one("a", int64(1)),
		one("a", "1"),
		one("a", 1.0),
		withEnv,
	}
	for round := range 2 {
		for i, md := range cases {
			md.ResourceMetrics().At(0).Resource().Attributes().PutInt("round", int64(round)) // a new request key
			require.NoError(t, te.pushMetrics(context.Background(), md), "case %d", i)
		}
	}
	// The flusher forgot the metrics of the cached series (as after its caches were bounded): it
	// reads them back for the totals.
	clear(te.metricOf)
	md := cases[0]
	md.ResourceMetrics().At(0).Resource().Attributes().PutInt("round", 2)
	require.NoError(t, te.pushMetrics(context.Background(), md))
	assert.Equal(t, 15.0, te.total(t, "minutely", "lk"))
	assertTotalsAgree(t, te.pool, te.schema)
	rows, err := te.pool.Query(context.Background(),
		`SELECT attributes::text, sum(value) FROM `+te.schema+`.minutely WHERE metric = 'lk' GROUP BY 1 ORDER BY 1`)
	require.NoError(t, err)
	got := map[string]float64{}
	var attrs string
	var v float64
	_, err = pgx.ForEachRow(rows, []any{&attrs, &v}, func() error { got[attrs] = v; return nil })
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{
		`{"a": "x", "b": "y"}`:                5,
		`{"": "y", "a": "xb"}`:                2,
		`{"a": 1}`:                            4, // int 1 and double 1.0: one identity, two lookup keys
		`{"a": "1"}`:                          2,
		`{"a": "x", "b": "y", "env": "prod"}`: 2,
	}, got)
}

// TestSeriesCreatedCountsInserts: series_created counts the series a collector adds, not those it
// only looks up because another collector added them first.
func TestSeriesCreatedCountsInserts(t *testing.T) {
	sc := pgtest.NewSchema(t)
	a := startExporter(t, sc)
	b := startExporter(t, sc)
	at := hoursAgo(1)
	a.push(t, pt{metric: "sc", service: "s", attrs: map[string]any{"k": "1"}, at: at, value: 1})
	b.push(t, pt{metric: "sc", service: "s", attrs: map[string]any{"k": "1"}, at: at, value: 1},
		pt{metric: "sc", service: "s", attrs: map[string]any{"k": "2"}, at: at, value: 1})
	metadatatest.AssertEqualExporterPgrollupSeriesCreated(t, a.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualExporterPgrollupSeriesCreated(t, b.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	assert.Equal(t, 2.0, a.count(t, "SELECT count(*) FROM "+a.schema+".series"))
	assert.Equal(t, 3.0, a.total(t, "minutely", "sc"))
}
