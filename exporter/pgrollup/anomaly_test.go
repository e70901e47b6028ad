package pgrollup

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/exporter/pgrollup/internal/anomalyeval"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
)

// anomalyRow is one row of anomalies().
type anomalyRow struct {
	At                                   time.Time
	Metric                               string
	Value, Expected, Lower, Upper, Score float64
	Kind                                 string
}

// anomalies calls the anomalies function.
func (te *testExporter) anomalies(t testing.TB, since, until time.Time, step string, metric *string) []anomalyRow {
	t.Helper()
	rows, err := te.pool.Query(context.Background(),
		"SELECT time, metric, value, expected, lower, upper, score, kind FROM "+te.schema+".anomalies($1, $2, $3::interval, $4)",
		since, until, step, metric)
	require.NoError(t, err)
	defer rows.Close()
	var out []anomalyRow
	for rows.Next() {
		var r anomalyRow
		require.NoError(t, rows.Scan(&r.At, &r.Metric, &r.Value, &r.Expected, &r.Lower, &r.Upper, &r.Score, &r.Kind))
		r.At = r.At.UTC()
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// refreshBaselines recomputes the baselines as of at and returns how many metrics have one.
func (te *testExporter) refreshBaselines(t testing.TB, at time.Time) int {
	t.Helper()
	var n int
	require.NoError(t, te.pool.QueryRow(context.Background(), "SELECT "+te.schema+".refresh_anomaly_baselines($1)", at).Scan(&n))
	return n
}

// seedAnomalies generates specs over the given history up to the current minute (exclusive) and loads them
// (minutes for the last 2 days). It returns the series and the start.
func seedAnomalies(t testing.TB, te *testExporter, history time.Duration, specs ...anomalyeval.Spec) ([]anomalyeval.Series, time.Time) {
	t.Helper()
	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-history)
	n := int(history / time.Minute)
	var all []anomalyeval.Series
	for i, sp := range specs {
		all = append(all, anomalyeval.Generate(sp, start, n, uint64(i+1)))
	}
	require.NoError(t, anomalyeval.Load(context.Background(), te.pool, te.sc.Name, all, max(0, n-2*1440)))
	return all, start
}

func minute(i int) time.Duration { return time.Duration(i) * time.Minute }

// TestAnomaliesEachKind injects each kind into a metric with three weeks of seasonal history at about 60 per
// minute and checks that anomalies() flags it with the right kind, a drop to zero within two minutes of its
// start, and nothing on the clean copy.
func TestAnomaliesEachKind(t *testing.T) {
	te := startExporter(t, nil)
	_, err := schema.Migrate(context.Background(), te.pool, te.sc.Name)
	require.NoError(t, err)
	const weeks = 3
	n := weeks * 7 * 1440
	at := n - 45 // 45 minutes ago
	base := anomalyeval.Spec{Peak: 60, Night: 0.3, Weekend: 0.7, TrendPerWeek: 0.02}
	mk := func(name string, k anomalyeval.Kind, dur int) anomalyeval.Spec {
		s := base
		s.Name = name
		if k != "" {
			s.Anomalies = []anomalyeval.Label{{Kind: k, Start: at, End: at + dur}}
		}
		return s
	}
	all, start := seedAnomalies(t, te, weeks*7*24*time.Hour,
		mk("clean", "", 0), mk("dead", anomalyeval.DropToZero, 20), mk("halved", anomalyeval.Halving, 30),
		mk("spiked", anomalyeval.Spike, 10), mk("shifted", anomalyeval.LevelShift, 45))
	// The baselines as of one hour ago, before the anomalies started.
	require.Equal(t, len(all), te.refreshBaselines(t, start.Add(minute(n-60))))
	rows, err := te.pool.Query(context.Background(), "SELECT metric, baseline, level, dispersion, hours FROM "+te.schema+".anomaly_baselines")
	require.NoError(t, err)
	for rows.Next() {
		var m, b string
		var l, d float64
		var h int
		require.NoError(t, rows.Scan(&m, &b, &l, &d, &h))
		t.Logf("%s %s level %.3f dispersion %.4f hours %d", m, b, l, d, h)
	}
	got := te.anomalies(t, start.Add(minute(n-60)), start.Add(minute(n)), "1 minute", nil)
	byMetric := map[string][]anomalyRow{}
	for _, r := range got {
		byMetric[r.Metric] = append(byMetric[r.Metric], r)
	}
	assert.Empty(t, byMetric["clean"], "nothing on the clean metric")
	want := map[string]string{"dead": "drop", "halved": "drop", "spiked": "spike", "shifted": "drop"}
	for m, kind := range want {
		rows := byMetric[m]
		require.NotEmpty(t, rows, m)
		first := rows[0].At
		assert.False(t, first.Before(start.Add(minute(at))), "%s: nothing before the anomaly starts (first %s)", m, first)
		for _, r := range rows {
			assert.Equal(t, kind, r.Kind, m)
			assert.Positive(t, r.Score, m)
			assert.LessOrEqual(t, r.Lower, r.Expected, m)
			assert.GreaterOrEqual(t, r.Upper, r.Expected, m)
			if kind == "drop" {
				assert.Less(t, r.Value, r.Expected, m)
			} else {
				assert.Greater(t, r.Value, r.Expected, m)
			}
		}
		if m == "dead" {
			assert.LessOrEqual(t, first.Sub(start.Add(minute(at))), time.Minute, "a drop to zero is flagged within 2 buckets")
		}
	}
	for _, r := range got {
		t.Logf("%+v", r)
	}
}
