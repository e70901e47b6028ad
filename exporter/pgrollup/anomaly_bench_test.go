package pgrollup

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
)

// BenchmarkAnomalies1000Metrics measures track.anomalies over the last hour (per minute) for 1,000 metrics with 6
// weeks of hourly history (and the last day per minute), with baselines refreshed, beside its peer in the same run:
// reading the same hour of per-minute totals of every metric (the floor: the rows anomalies() has to read); and
// anomalies() of one metric (metric_name); anomalies_live (judging the hour again, as anomalies() does for what the
// exporter has not judged); and judging one minute (what the exporter's loop does each minute). It
// reports p50 of each over 30 calls (alternating) per iteration, the cost of one refresh_anomaly_baselines over the
// same data (refresh-ms), and of the first judge_anomalies (the last 2 hours, judge-2h-ms). The exporter's own loop
// keeps running (every 10s, the default), as in production. Run with -benchtime 1x: the setup (2.4 million rows)
// is most of its time.
func BenchmarkAnomalies1000Metrics(b *testing.B) {
	te := startExporter(b, nil)
	ctx := context.Background()
	_, err := schema.Migrate(ctx, te.pool, te.sc.Name)
	require.NoError(b, err)
	s := te.schema
	for _, q := range []string{
		`INSERT INTO ` + s + `.series (key, metric, service, attributes)
SELECT gen_random_uuid(), 'metric-' || m, 'bench', '{}' FROM generate_series(1, 1000) m`,
		// Rows in time order, as the exporter writes them (the BRIN indexes on time rely on it).
		// Hourly totals for 6 weeks: a daily cycle around 60 * (1 + m % 50) per hour, with deterministic noise.
		`INSERT INTO ` + s + `.total_hour (metric, time, value)
SELECT 'metric-' || m, h, round((1 + m % 50) * 60 * (1.2 + sin(extract(epoch FROM h) / 13751) + 0.1 * sin(m * 7 + extract(epoch FROM h) / 3600)))
  FROM generate_series(1, 1000) m,
       generate_series(date_trunc('hour', now()) - interval '6 weeks', date_trunc('hour', now()), interval '1 hour') h
 ORDER BY h, m`,
		`INSERT INTO ` + s + `.total_minute (metric, time, value)
SELECT 'metric-' || m, t, round((1 + m % 50) * (1.2 + sin(extract(epoch FROM t) / 13751) + 0.3 * sin(m * 7 + extract(epoch FROM t) / 60)))
  FROM generate_series(1, 1000) m,
       generate_series(date_trunc('minute', now()) - interval '1 day', date_trunc('minute', now()), interval '1 minute') t
 ORDER BY t, m`,
		// 50 metrics stopped counting 30 minutes ago: some anomalies to find.
		`DELETE FROM ` + s + `.total_minute WHERE metric IN (SELECT 'metric-' || m FROM generate_series(1, 50) m)
   AND time >= now() - interval '30 minutes'`,
		`VACUUM ANALYZE ` + s + `.series, ` + s + `.total_hour, ` + s + `.total_minute`, // and no autovacuum while timing
	} {
		_, err := te.pool.Exec(ctx, q)
		require.NoError(b, err)
	}
	// The exporter's own loop (every 10s) may have refreshed already: make the baselines stale to time a recompute.
	_, err = te.pool.Exec(ctx, "UPDATE "+s+".anomaly_baselines SET through = '-infinity'")
	require.NoError(b, err)
	t0 := time.Now()
	n := te.refreshBaselines(b, time.Now())
	refresh := time.Since(t0)
	require.Equal(b, 1000, n)
	// As the exporter's loop does: judge the latest complete minutes (the first time, the last 2 hours).
	t0 = time.Now()
	_, err = te.pool.Exec(ctx, "SELECT "+s+".judge_anomalies(now())")
	require.NoError(b, err)
	judge := time.Since(t0)
	// The judged minutes are what judging them again gives.
	var judged, live int
	require.NoError(b, te.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+s+`.anomalies(j.since, j.until)),
       (SELECT count(*) FROM `+s+`.anomalies_live(j.since, j.until)) FROM `+s+`.anomaly_judged_range j`).Scan(&judged, &live))
	require.Equal(b, live, judged)
	b.Logf("%d anomalous minutes in the judged range", judged)
	queries := map[string]string{
		"anomalies":        `SELECT count(*) FROM ` + s + `.anomalies(now() - interval '1 hour', now())`,
		"live":             `SELECT count(*) FROM ` + s + `.anomalies_live(now() - interval '1 hour', now())`,
		"live, one minute": `SELECT count(*) FROM ` + s + `.anomalies_live(date_bin('1 minute', now(), timestamptz '2001-01-01') - interval '2 minutes', date_bin('1 minute', now(), timestamptz '2001-01-01') - interval '1 minute')`,
		"one metric":       `SELECT count(*) FROM ` + s + `.anomalies(now() - interval '1 hour', now(), interval '1 minute', 'metric-7')`,
		"peer: read the hour's totals": `SELECT count(*) FROM (SELECT metric, time, value FROM ` + s + `.total_minute
 WHERE time >= now() - interval '1 hour' AND time < now()) r`,
	}
	times := map[string][]time.Duration{}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N * 30 {
		for name, q := range queries {
			start := time.Now()
			var c int
			require.NoError(b, te.pool.QueryRow(ctx, q).Scan(&c))
			times[name] = append(times[name], time.Since(start))
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	b.ReportMetric(p50(times["anomalies"]), "anomalies-p50-ms")
	b.ReportMetric(p50(times["peer: read the hour's totals"]), "peer-p50-ms")
	b.ReportMetric(p50(times["one metric"]), "one-metric-p50-ms")
	b.ReportMetric(p50(times["live"]), "live-p50-ms")
	b.ReportMetric(p50(times["live, one minute"]), "judge-1min-p50-ms")
	b.ReportMetric(float64(refresh.Milliseconds()), "refresh-ms")
	b.ReportMetric(float64(judge.Milliseconds()), "judge-2h-ms")
}
