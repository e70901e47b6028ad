package pgrollup

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/trackhq/track/exporter/pgrollup/internal/anomalyeval"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"github.com/trackhq/track/internal/pgtest"
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
// (minutes too, as the exporter keeps them for 14 days). It returns the series and the start.
func seedAnomalies(t testing.TB, te *testExporter, history time.Duration, specs ...anomalyeval.Spec) ([]anomalyeval.Series, time.Time) {
	t.Helper()
	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-history)
	n := int(history / time.Minute)
	var all []anomalyeval.Series
	for i, sp := range specs {
		all = append(all, anomalyeval.Generate(sp, start, n, uint64(i+1)))
	}
	require.NoError(t, anomalyeval.Load(context.Background(), te.pool, te.sc.Name, all, 0))
	return all, start
}

func minute(i int) time.Duration { return time.Duration(i) * time.Minute }

// startAnomalyExporter starts an exporter whose anomaly loop runs once, at start (before the test writes
// anything), so that the test decides when the baselines are refreshed and minutes judged.
func startAnomalyExporter(t testing.TB) *testExporter {
	return startExporter(t, nil, func(c *Config) { c.Anomalies.RefreshInterval = time.Hour })
}

// TestAnomaliesEachKind injects each kind into a metric with three weeks of seasonal history at about 60 per
// minute and checks that anomalies() flags it with the right kind, a drop to zero within two minutes of its
// start, and nothing on the clean copy.
func TestAnomaliesEachKind(t *testing.T) {
	te := startAnomalyExporter(t)
	_, err := schema.Migrate(context.Background(), te.pool, te.sc.Name)
	require.NoError(t, err)
	const weeks = 3
	n := weeks * 7 * 1440
	at := n - 45 // 45 minutes ago
	base := anomalyeval.Spec{Peak: 200, Night: 0.3, Weekend: 0.7, TrendPerWeek: 0.02}
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
		mk("spiked", anomalyeval.Spike, 10))
	// The baselines as of one hour ago, before the anomalies started.
	require.Equal(t, len(all), te.refreshBaselines(t, start.Add(minute(n-60))))
	got := te.anomalies(t, start.Add(minute(n-60)), start.Add(minute(n)), "1 minute", nil)
	byMetric := map[string][]anomalyRow{}
	for _, r := range got {
		byMetric[r.Metric] = append(byMetric[r.Metric], r)
	}
	assert.Empty(t, byMetric["clean"], "nothing on the clean metric")
	want := map[string]string{"dead": "drop", "halved": "drop", "spiked": "spike"}
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
}

// TestAnomaliesLowCountsQuiet: metrics counting a few per hour stay quiet, through their own Poisson noise, a
// burst of 3 in one minute where 2 an hour are expected, and an hour without any count.
func TestAnomaliesLowCountsQuiet(t *testing.T) {
	te := startAnomalyExporter(t)
	n := 3 * 7 * 1440
	specs := []anomalyeval.Spec{
		{Name: "cards-fraudulent", Peak: 2.0 / 60, Night: 0.5, Weekend: 0.8},
		{Name: "rare", Peak: 0.5, Night: 0.2, Weekend: 0.6},
		// 3 an hour at peak: an hour without any count is not improbable (P = e^-3 at most). (At 0.5 a minute,
		// 60 silent minutes of the day are 30 expected, a drop the detector must flag: see anomalies' README.)
		{Name: "rare-dead", Peak: 3.0 / 60, Night: 0.2, Weekend: 0.6,
			Anomalies: []anomalyeval.Label{{Kind: anomalyeval.DropToZero, Start: n - 60, End: n}}},
	}
	_, start := seedAnomalies(t, te, 3*7*24*time.Hour, specs...)
	burst := start.Add(minute(n - 30))
	_, err := te.pool.Exec(context.Background(), `INSERT INTO `+te.schema+`.total_minute (metric, time, value) VALUES ('cards-fraudulent', $1, 3)
ON CONFLICT (metric, time) DO UPDATE SET value = 3`, burst)
	require.NoError(t, err)
	require.Equal(t, 3, te.refreshBaselines(t, start.Add(minute(n-90))))
	assert.Empty(t, te.anomalies(t, start.Add(minute(n-24*60)), start.Add(minute(n)), "1 minute", nil), "per minute")
	assert.Empty(t, te.anomalies(t, start.Add(minute(n-24*60)), start.Add(minute(n)), "1 hour", nil), "per hour")
}

// TestAnomaliesYoungMetric: a metric 5 hours old is judged against its recent level ('recent' baseline, said
// in anomalies_now's baseline column and the baselines table), raises nothing on clean data, and still flags a
// drop to zero; a metric 2 hours old has no baseline and is not judged.
func TestAnomaliesYoungMetric(t *testing.T) {
	te := startAnomalyExporter(t)
	n := 5 * 60
	specs := []anomalyeval.Spec{
		{Name: "young", Peak: 40, Night: 1, Weekend: 1},
		{Name: "young-dead", Peak: 40, Night: 1, Weekend: 1,
			Anomalies: []anomalyeval.Label{{Kind: anomalyeval.DropToZero, Start: n - 20, End: n}}},
	}
	_, start := seedAnomalies(t, te, 5*time.Hour, specs...)
	baby := anomalyeval.Generate(anomalyeval.Spec{Name: "baby", Peak: 40, Night: 1, Weekend: 1}, start.Add(3*time.Hour), 120, 9)
	require.NoError(t, anomalyeval.Load(context.Background(), te.pool, te.sc.Name, []anomalyeval.Series{baby}, 0))
	require.Equal(t, 2, te.refreshBaselines(t, start.Add(minute(n-30))))
	var kind string
	require.NoError(t, te.pool.QueryRow(context.Background(), "SELECT baseline FROM "+te.schema+".anomaly_baselines WHERE metric = 'young'").Scan(&kind))
	assert.Equal(t, "recent", kind)
	got := te.anomalies(t, start.Add(minute(n-120)), start.Add(minute(n)), "1 minute", nil)
	require.NotEmpty(t, got)
	for _, r := range got {
		assert.Equal(t, "young-dead", r.Metric, "only the drop is flagged: %+v", r)
		assert.Equal(t, "drop", r.Kind)
		assert.False(t, r.At.Before(start.Add(minute(n-20))))
	}
	baby0 := "baby"
	assert.Empty(t, te.anomalies(t, start.Add(minute(n-60)), start.Add(minute(n)), "1 minute", &baby0))
}

// TestAnomaliesOnlyCompleteBuckets: a metric that stops counting is flagged in its complete minutes, but the
// still-filling minute (past the watermark) and the minutes of an ingestion outage (no collector flushed) are
// never flagged, although they read 0 too.
func TestAnomaliesOnlyCompleteBuckets(t *testing.T) {
	te := startAnomalyExporter(t)
	ctx := context.Background()
	n := 3 * 7 * 1440
	specs := []anomalyeval.Spec{{Name: "steady", Peak: 120, Night: 0.5, Weekend: 0.8,
		Anomalies: []anomalyeval.Label{{Kind: anomalyeval.DropToZero, Start: n - 40, End: n}}}}
	_, start := seedAnomalies(t, te, 3*7*24*time.Hour, specs...)
	require.Equal(t, 1, te.refreshBaselines(t, start.Add(minute(n-60))))
	// An outage: no collector covered [n-30, n-20) minutes. The history before the exporter started is one span
	// of collector '' (migration 006); cut a hole into it, and keep this test's collector covering the present.
	outFrom, outTo := start.Add(minute(n-30)), start.Add(minute(n-20))
	_, err := te.pool.Exec(ctx, `UPDATE `+te.schema+`.collector_spans SET until = $1 WHERE collector = ''`, outFrom)
	require.NoError(t, err)
	_, err = te.pool.Exec(ctx, `INSERT INTO `+te.schema+`.collector_spans (collector, since, until, lateness, gap)
VALUES ('before-now', $1, now() - interval '1 second', interval '0', interval '1 minute')`, outTo)
	require.NoError(t, err)
	got := te.anomalies(t, start.Add(minute(n-60)), time.Now().Add(time.Minute), "1 minute", nil)
	require.NotEmpty(t, got)
	flagged := map[time.Time]bool{}
	for _, r := range got {
		flagged[r.At] = true
		assert.False(t, !r.At.Before(outFrom) && r.At.Before(outTo), "a minute of the outage is flagged: %s", r.At)
	}
	var watermark time.Time
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT "+te.schema+".watermark()").Scan(&watermark))
	for at := range flagged {
		assert.False(t, at.Add(time.Minute).After(watermark), "a minute past the watermark (%s) is flagged: %s", watermark, at)
	}
	assert.True(t, flagged[start.Add(minute(n-40))] || flagged[start.Add(minute(n-39))], "the drop is flagged within 2 minutes")
	assert.True(t, flagged[outTo.Add(2*time.Minute)], "the complete minutes after the outage are judged again")

	// anomalies_now: the drop goes on; its run restarts after the outage (whose minutes were not judged).
	var metric, kind, baseline string
	var at, started time.Time
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT time, metric, kind, started, baseline FROM "+te.schema+".anomalies_now").
		Scan(&at, &metric, &kind, &started, &baseline))
	assert.Equal(t, "steady", metric)
	assert.Equal(t, "drop", kind)
	assert.Equal(t, "weekly", baseline)
	assert.False(t, started.Before(outTo), "started %s, after the outage", started)
	assert.False(t, at.Add(time.Minute).After(watermark), "the latest complete minute")
	assert.True(t, flagged[at.UTC()])
}

// TestAnomalyRefreshLoop: the exporter refreshes the baselines on its own, in its configured time zone.
func TestAnomalyRefreshLoop(t *testing.T) {
	sc := pgtest.NewSchema(t)
	first := startExporter(t, sc)
	_, start := seedAnomalies(t, first, 6*time.Hour, anomalyeval.Spec{Name: "looped", Peak: 10, Night: 1, Weekend: 1})
	_ = start
	te := startExporter(t, sc, func(c *Config) {
		c.Anomalies.TimeZone = "Asia/Kolkata"
		c.Anomalies.RefreshInterval = time.Second
	})
	require.Eventually(t, func() bool {
		var tz string
		err := te.pool.QueryRow(context.Background(), "SELECT time_zone FROM "+te.schema+".anomaly_baselines WHERE metric = 'looped'").Scan(&tz)
		return err == nil && tz == "Asia/Kolkata"
	}, 10*time.Second, 20*time.Millisecond)
}

// TestAnomalyGrants: with the grants trackctl prints, a writer collector (migrate_on_start: false) refreshes the
// baselines, and the analyst calls anomalies() and reads anomalies_now but not the baselines table.
func TestAnomalyGrants(t *testing.T) {
	sc := pgtest.NewSchema(t)
	owner := startExporter(t, sc)
	ctx := context.Background()
	suffix := strings.TrimPrefix(sc.Name, "t_")
	writer, analyst := "aw_"+suffix, "aa_"+suffix
	for _, g := range append([]string{"CREATE ROLE " + writer + " LOGIN", "CREATE ROLE " + analyst + " LOGIN"},
		schema.Grants(sc.Name, writer, analyst)...) {
		_, err := owner.pool.Exec(ctx, g)
		require.NoError(t, err, g)
	}
	t.Cleanup(func() {
		for _, r := range []string{writer, analyst} {
			_, _ = owner.pool.Exec(context.Background(), "DROP OWNED BY "+r)
			_, _ = owner.pool.Exec(context.Background(), "DROP ROLE "+r)
		}
	})
	roleDSN := func(role string) string {
		return strings.Replace(sc.ServerDSN, "postgres://postgres@", "postgres://"+role+"@", 1)
	}
	seedAnomalies(t, owner, 6*time.Hour, anomalyeval.Spec{Name: "granted", Peak: 10, Night: 1, Weekend: 1})
	w := startExporter(t, sc, func(c *Config) {
		c.DSN = configopaque.String(roleDSN(writer))
		c.MigrateOnStart = false
		c.Anomalies.TimeZone = "Europe/Berlin"
	})
	// The writer refreshes (in Europe/Berlin) once no other refresh holds the lock (the owner's loop may).
	require.Eventually(t, func() bool {
		_, err := w.refreshAnomalies(ctx)
		require.NoError(t, err)
		var tz string
		err = owner.pool.QueryRow(ctx, "SELECT time_zone FROM "+owner.schema+".anomaly_baselines WHERE metric = 'granted'").Scan(&tz)
		return err == nil && tz == "Europe/Berlin"
	}, 10*time.Second, 50*time.Millisecond, "the writer refreshed the baselines")
	conn, err := pgx.Connect(ctx, roleDSN(analyst))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var c int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+sc.Name+".anomalies(now() - interval '1 hour', now())").Scan(&c))
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+sc.Name+".anomalies_now").Scan(&c))
	_, err = conn.Exec(ctx, "SELECT 1 FROM "+sc.Name+".anomaly_baselines LIMIT 1")
	require.ErrorContains(t, err, "permission denied")
	_, err = conn.Exec(ctx, "SELECT "+sc.Name+".refresh_anomaly_baselines(now())")
	require.ErrorContains(t, err, "permission denied")
}

// TestAnomaliesErrors: each bad argument raises its SQLSTATE with a hint.
func TestAnomaliesErrors(t *testing.T) {
	te := startAnomalyExporter(t)
	seedAnomalies(t, te, 3*time.Hour, anomalyeval.Spec{Name: "new-signup", Peak: 5, Night: 1, Weekend: 1})
	tests := []struct {
		args, code, message, hint string
	}{
		{"now() - interval '1 hour', now(), interval '1 minute', 'new-signups'", "42704", `no metric named "new-signups"`, `"new-signup"`},
		{"now() - interval '1 hour', now(), interval '90 seconds'", "22023", "step must be whole minutes", "interval"},
		{"now() - interval '1 hour', now(), interval '1 month'", "22023", "step must be whole minutes", "interval"},
		{"now(), now() - interval '1 hour'", "22023", "must be after since", "since < until"},
		{"now() - interval '40 days', now()", "22023", "longer than 31 days", "31 days"},
		{"now() - interval '20 days', now() - interval '19 days'", "22023", "minutes are kept", "1 hour"},
	}
	for _, tt := range tests {
		_, err := te.pool.Exec(context.Background(), "SELECT * FROM "+te.schema+".anomalies("+tt.args+")")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, tt.args)
		assert.Equal(t, tt.code, pgErr.Code, tt.args)
		assert.Contains(t, pgErr.Message, tt.message, tt.args)
		assert.Contains(t, pgErr.Hint, tt.hint, tt.args)
	}
	_, err := te.pool.Exec(context.Background(), "SELECT * FROM "+te.schema+".anomalies(now() - interval '20 days', now() - interval '19 days', interval '1 hour')")
	assert.NoError(t, err, "an older range with hourly steps reads the hour totals")
}

// TestAnomalySlotsAreLocal: a metric whose day follows Asia/Kolkata (UTC+05:30, peak at 16:00 local = 10:30 UTC)
// gets its seasonal rates by local hour when anomalies::time_zone is that zone. Slots are the local hour in which a
// UTC hour starts: the peak hour, 10:00-11:00 UTC, is slot 10 in UTC and slot 15 (it starts at 15:30) in Kolkata.
// Its clean last day raises nothing when judged in its own zone.
func TestAnomalySlotsAreLocal(t *testing.T) {
	te := startAnomalyExporter(t)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	_, start := seedAnomalies(t, te, 3*7*24*time.Hour,
		anomalyeval.Spec{Name: "local", Peak: 100, Night: 0.1, Weekend: 1, Location: kolkata})
	n := 3 * 7 * 1440
	peakSlot := func(tz string) int {
		_, err := te.pool.Exec(context.Background(), "UPDATE "+te.schema+".anomaly_settings SET time_zone = $1", tz)
		require.NoError(t, err)
		require.Equal(t, 1, te.refreshBaselines(t, start.Add(minute(n))))
		var rates []float64
		require.NoError(t, te.pool.QueryRow(context.Background(), "SELECT rates FROM "+te.schema+".anomaly_baselines").Scan(&rates))
		require.Len(t, rates, 168)
		best := 0
		for i, r := range rates[:24] { // Monday
			if r > rates[best] {
				best = i
			}
		}
		return best
	}
	assert.Equal(t, 10, peakSlot("UTC"))
	assert.Equal(t, 15, peakSlot("Asia/Kolkata"))
	assert.Empty(t, te.anomalies(t, start.Add(minute(n-24*60)), start.Add(minute(n)), "1 minute", nil))
}

// TestAnomaliesJudgedMatchLive: once the exporter has judged the latest minutes (judge_anomalies), anomalies()
// reads them and returns exactly what judging the range again returns; a refresh that changes the baselines
// forgets them.
func TestAnomaliesJudgedMatchLive(t *testing.T) {
	te := startAnomalyExporter(t)
	ctx := context.Background()
	n := 3 * 7 * 1440
	_, start := seedAnomalies(t, te, 3*7*24*time.Hour,
		anomalyeval.Spec{Name: "dead", Peak: 100, Night: 0.4, Weekend: 0.8,
			Anomalies: []anomalyeval.Label{{Kind: anomalyeval.DropToZero, Start: n - 50, End: n}}},
		anomalyeval.Spec{Name: "spiked", Peak: 100, Night: 0.4, Weekend: 0.8,
			Anomalies: []anomalyeval.Label{{Kind: anomalyeval.Spike, Start: n - 30, End: n - 20}}},
		anomalyeval.Spec{Name: "clean", Peak: 100, Night: 0.4, Weekend: 0.8})
	require.Equal(t, 3, te.refreshBaselines(t, start.Add(minute(n-60))))
	_, err := te.pool.Exec(ctx, "UPDATE "+te.schema+".anomaly_baselines SET through = date_bin('1 hour', now() - interval '5 minutes', timestamptz '2001-01-01')")
	require.NoError(t, err, "as if refreshed now: the next refresh keeps them")
	var kept int
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT "+te.schema+".judge_anomalies(now())").Scan(&kept))
	require.Positive(t, kept)
	var since, until time.Time
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT since, until FROM "+te.schema+".anomaly_judged_range").Scan(&since, &until))
	from, to := start.Add(minute(n-60)), time.Now()
	require.False(t, from.Before(since), "the range is judged")
	judged := te.anomalies(t, from, to, "1 minute", nil)
	rows, err := te.pool.Query(ctx, "SELECT time, metric, value, expected, lower, upper, score, kind FROM "+te.schema+".anomalies_live($1, $2)", from, to)
	require.NoError(t, err)
	live, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (anomalyRow, error) {
		var a anomalyRow
		err := r.Scan(&a.At, &a.Metric, &a.Value, &a.Expected, &a.Lower, &a.Upper, &a.Score, &a.Kind)
		a.At = a.At.UTC()
		return a, err
	})
	require.NoError(t, err)
	require.NotEmpty(t, judged)
	require.Len(t, judged, len(live))
	for i, j := range judged {
		l := live[i]
		assert.Equal(t, []any{l.At, l.Metric, l.Value, l.Kind}, []any{j.At, j.Metric, j.Value, j.Kind})
		// The runs' sums start at another bucket: equal up to rounding.
		for _, pair := range [][2]float64{{l.Expected, j.Expected}, {l.Lower, j.Lower}, {l.Upper, j.Upper}, {l.Score, j.Score}} {
			assert.InEpsilon(t, pair[0]+1e-12, pair[1]+1e-12, 1e-9)
		}
	}
	one := "spiked"
	for _, r := range te.anomalies(t, from, to, "1 minute", &one) {
		assert.Equal(t, "spiked", r.Metric)
	}
	// A refresh that recomputes (another time zone) forgets the judged minutes.
	_, err = te.pool.Exec(ctx, "UPDATE "+te.schema+".anomaly_settings SET time_zone = 'Europe/Berlin'")
	require.NoError(t, err)
	te.refreshBaselines(t, time.Now())
	var left int
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+".anomaly_judged").Scan(&left))
	assert.Zero(t, left)
}
