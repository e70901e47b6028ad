package pgrollup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadatatest"
	"github.com/trackhq/track/internal/pgtest"
)

// pt is one data point of a test request.
type pt struct {
	metric  string
	service string
	attrs   map[string]any
	at      time.Time
	value   float64
	isInt   bool
	// kind overrides the metric type: "", "cumulative", "unspecified" (a Sum without temporality),
	// "nonmono", "gauge", "histogram".
	kind string
	// instance is the service.instance.id; default instance-<index mod 3>.
	instance string
}

// request builds a pmetric.Metrics holding points, one resource per point (with a random
// instance id that the exporter must drop), one metric per point.
func request(points ...pt) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for i, p := range points {
		rm := md.ResourceMetrics().AppendEmpty()
		if p.service != "" {
			rm.Resource().Attributes().PutStr("service.name", p.service)
		}
		if p.instance == "" {
			p.instance = fmt.Sprintf("instance-%d", i%3)
		}
		rm.Resource().Attributes().PutStr("service.instance.id", p.instance)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(p.metric)
		var dp pmetric.NumberDataPoint
		switch p.kind {
		case "gauge":
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
		case "histogram":
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			hp := h.DataPoints().AppendEmpty()
			hp.SetTimestamp(pcommon.NewTimestampFromTime(p.at))
			hp.SetCount(1)
			continue
		default:
			s := m.SetEmptySum()
			s.SetIsMonotonic(p.kind != "nonmono")
			switch p.kind {
			case "cumulative":
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			case "unspecified":
				s.SetAggregationTemporality(pmetric.AggregationTemporalityUnspecified)
			default:
				s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			}
			dp = s.DataPoints().AppendEmpty()
		}
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(p.at.Add(-10 * time.Second)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(p.at))
		if p.isInt {
			dp.SetIntValue(int64(p.value))
		} else {
			dp.SetDoubleValue(p.value)
		}
		for k, v := range p.attrs {
			switch v := v.(type) {
			case string:
				dp.Attributes().PutStr(k, v)
			case int:
				dp.Attributes().PutInt(k, int64(v))
			case bool:
				dp.Attributes().PutBool(k, v)
			}
		}
	}
	return md
}

// testExporter is an exporter started against a private schema.
type testExporter struct {
	*rollupExporter
	tel  *componenttest.Telemetry
	pool *pgxpool.Pool
	sc   *pgtest.Schema
}

// startExporter starts an exporter on sc (a new schema when nil) with a short flush interval.
func startExporter(t testing.TB, sc *pgtest.Schema, modify ...func(*Config)) *testExporter {
	t.Helper()
	if sc == nil {
		sc = pgtest.NewSchema(t)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(sc.ServerDSN)
	cfg.Schema = sc.Name
	cfg.FlushInterval = 20 * time.Millisecond
	for _, m := range modify {
		m(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.NewNop()
	e, err := newExporter(cfg, set)
	require.NoError(t, err)
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	te := &testExporter{rollupExporter: e, tel: tel, pool: sc.Pool(t), sc: sc}
	t.Cleanup(func() {
		require.NoError(t, e.shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return te
}

func (te *testExporter) push(t testing.TB, points ...pt) {
	t.Helper()
	require.NoError(t, te.pushMetrics(context.Background(), request(points...)))
}

// total sums a view (minutely, hourly, daily) for a metric.
func (te *testExporter) total(t testing.TB, view, metric string) float64 {
	t.Helper()
	var v float64
	require.NoError(t, te.pool.QueryRow(context.Background(),
		"SELECT coalesce(sum(value), 0) FROM "+te.schema+"."+view+" WHERE metric = $1", metric).Scan(&v))
	return v
}

// bucket reads one bucket of a view summed over the metric's series.
func (te *testExporter) bucket(t testing.TB, view, metric string, at time.Time) float64 {
	t.Helper()
	var v float64
	require.NoError(t, te.pool.QueryRow(context.Background(),
		"SELECT coalesce(sum(value), 0) FROM "+te.schema+"."+view+" WHERE metric = $1 AND time = $2", metric, at).Scan(&v))
	return v
}

type seriesRow struct {
	At    time.Time
	Value float64
}

// series calls the series function.
func (te *testExporter) series(t testing.TB, metric string, since, until time.Time, step string, filter string) []seriesRow {
	t.Helper()
	if filter == "" {
		filter = "{}"
	}
	rows, err := te.pool.Query(context.Background(),
		"SELECT time, value FROM "+te.schema+".series($1, $2, $3, $4::interval, $5::jsonb)", metric, since, until, step, filter)
	require.NoError(t, err)
	defer rows.Close()
	var out []seriesRow
	for rows.Next() {
		var r seriesRow
		require.NoError(t, rows.Scan(&r.At, &r.Value))
		r.At = r.At.UTC()
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// hourAgo is the start of the UTC hour two hours before now: a safe, recent place for test points.
func hoursAgo(n int) time.Time {
	return time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(n) * time.Hour)
}

// recomputeTotals sets the per-metric totals of schema (quoted) to the sums of its rollup rows, as
// the exporter keeps them: for tests that write rollup rows directly.
func recomputeTotals(tb testing.TB, pool *pgxpool.Pool, schema string) {
	tb.Helper()
	for _, r := range resolutions {
		_, err := pool.Exec(context.Background(), `TRUNCATE `+schema+`.`+r.Totals+`;
INSERT INTO `+schema+`.`+r.Totals+` (metric, time, value)
SELECT s.metric, r.time, sum(r.value) FROM `+schema+`.`+r.Table+` r JOIN `+schema+`.series s ON s.id = r.series_id GROUP BY 1, 2;
ANALYZE `+schema+`.`+r.Totals)
		require.NoError(tb, err)
	}
}

// assertTotalsAgree checks that, in every resolution, each metric's total per bucket equals the sum
// of its series' rollup rows, and that no total exists without rows.
func assertTotalsAgree(tb testing.TB, pool *pgxpool.Pool, schema string) {
	tb.Helper()
	for _, r := range resolutions {
		var bad int
		require.NoError(tb, pool.QueryRow(context.Background(), `
WITH sums AS (SELECT s.metric, r.time, sum(r.value) AS value
                FROM `+schema+`.`+r.Table+` r JOIN `+schema+`.series s ON s.id = r.series_id GROUP BY 1, 2)
SELECT count(*) FROM sums FULL JOIN `+schema+`.`+r.Totals+` t USING (metric, time)
 WHERE sums.value IS DISTINCT FROM t.value`).Scan(&bad))
		assert.Zero(tb, bad, "%s buckets whose total differs from the sum of the series", r.Name)
	}
}
