package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/exporter/pgrollup"
	"github.com/trackhq/track/internal/pgtest"
)

// TestSchemaWithoutTheFunctions: a schema the migrations never ran on is a failure (exit 1) that
// says to run trackctl migrate; a schema that does not exist is a -schema error (exit 2).
func TestSchemaWithoutTheFunctions(t *testing.T) {
	sc := pgtest.NewSchema(t)
	r := runChart(t, env{envDSN: sc.ServerDSN}, "-schema", sc.Name, "-metric", "new-signup")
	assert.Equal(t, exitFailure, r.code, r.stderr)
	assert.Contains(t, r.stderr, "lacks migration 006; run trackctl migrate")
	assert.Empty(t, r.stdout)

	r = runChart(t, env{envDSN: sc.ServerDSN}, "anomalies", "-schema", sc.Name)
	assert.Equal(t, exitFailure, r.code, r.stderr)
	assert.Contains(t, r.stderr, "lacks migration 007; run trackctl migrate")

	r = runChart(t, env{envDSN: sc.ServerDSN}, "-schema", sc.Name+"_none", "-metric", "new-signup")
	assert.Equal(t, exitUsage, r.code, r.stderr)
	assert.Contains(t, r.stderr, "trackchart: -schema: ")
}

// counts is what a fixture counted per minute and series: values[i][s] is series s's count in
// minute start + i.
type counts struct {
	start  time.Time
	values [][]float64
}

// sum is the total of series (all when none are named) over the minutes in [from, to).
func (c counts) sum(from, to time.Time, series ...int) float64 {
	total := 0.0
	for i, vs := range c.values {
		at := c.start.Add(time.Duration(i) * time.Minute)
		if at.Before(from) || !at.Before(to) {
			continue
		}
		for s, v := range vs {
			if len(series) == 0 || contains(series, s) {
				total += v
			}
		}
	}
	return total
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// fixture is a migrated schema holding counts as the exporter writes them.
type fixture struct {
	sc     *pgtest.Schema
	pool   *pgxpool.Pool
	counts counts
	end    time.Time // the current minute's start when the data was written
}

// fixtureSeries are the series the fixture writes: new-signup from two services, and other.
var fixtureSeries = []struct {
	metric, service, attributes string
}{
	{"new-signup", "login-service", `{"route":"/a"}`},
	{"new-signup", "web-signup", `{}`},
	{"other", "web-signup", `{}`},
}

// newFixture migrates a schema and writes 6 hours of counts up to the current minute into the
// rollups and the totals of every resolution, as the exporter would have: new-signup counts 40 +
// 20 a minute, except drop (minutes of nothing) and spike (minutes of ten times as much); other
// counts 5 a minute. The current minute holds 10 + 5 so far. Everything before the migration ran
// is complete (migration 006's rule for history); the current minute is not. Then it refreshes the
// anomaly baselines as of an hour ago, before the drop and the spike.
func newFixture(t *testing.T, drop, spike [2]int) *fixture {
	t.Helper()
	ctx := context.Background()
	sc := pgtest.NewSchema(t)
	pool := sc.Pool(t)
	_, err := pgrollup.Migrate(ctx, pool, sc.Name)
	require.NoError(t, err)

	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-6 * time.Hour).Truncate(time.Hour)
	c := counts{start: start}
	for at := start; !at.After(end); at = at.Add(time.Minute) {
		ago := int(end.Sub(at) / time.Minute)
		v := []float64{40, 20, 5}
		switch {
		case ago == 0:
			v = []float64{10, 5, 0}
		case ago <= drop[0] && ago > drop[1]:
			v = []float64{0, 0, 5}
		case ago <= spike[0] && ago > spike[1]:
			v = []float64{400, 200, 5}
		}
		c.values = append(c.values, v)
	}
	ident := pgx.Identifier{sc.Name}.Sanitize()
	for i, s := range fixtureSeries {
		_, err := pool.Exec(ctx, "INSERT INTO "+ident+".series (id, key, metric, service, attributes) "+
			"VALUES ($1, gen_random_uuid(), $2, $3, $4::jsonb)", i+1, s.metric, s.service, s.attributes)
		require.NoError(t, err)
	}
	for _, res := range []struct {
		name  string
		width time.Duration
	}{{"minute", time.Minute}, {"hour", time.Hour}, {"day", 24 * time.Hour}} {
		rollups := map[[2]int64]float64{} // (series id, bucket) → sum
		totals := map[string]map[int64]float64{}
		for i, vs := range c.values {
			bucket := start.Add(time.Duration(i) * time.Minute).Truncate(res.width).UnixMicro()
			for s, v := range vs {
				if v == 0 {
					continue
				}
				rollups[[2]int64{int64(s + 1), bucket}] += v
				m := fixtureSeries[s].metric
				if totals[m] == nil {
					totals[m] = map[int64]float64{}
				}
				totals[m][bucket] += v
			}
		}
		var rows, trows [][]any
		for k, v := range rollups {
			rows = append(rows, []any{k[0], time.UnixMicro(k[1]), v})
		}
		for m, byTime := range totals {
			for at, v := range byTime {
				trows = append(trows, []any{m, time.UnixMicro(at), v})
			}
		}
		_, err := pool.CopyFrom(ctx, pgx.Identifier{sc.Name, "rollup_" + res.name}, []string{"series_id", "time", "value"}, pgx.CopyFromRows(rows))
		require.NoError(t, err)
		_, err = pool.CopyFrom(ctx, pgx.Identifier{sc.Name, "total_" + res.name}, []string{"metric", "time", "value"}, pgx.CopyFromRows(trows))
		require.NoError(t, err)
	}
	var judged int
	require.NoError(t, pool.QueryRow(ctx, "SELECT "+ident+".refresh_anomaly_baselines($1)", end.Add(-time.Hour)).Scan(&judged))
	require.Equal(t, 2, judged, "both metrics have a baseline")
	return &fixture{sc: sc, pool: pool, counts: c, end: end}
}

// run runs trackchart against the fixture's schema.
func (f *fixture) run(t *testing.T, e env, args ...string) result {
	t.Helper()
	if e == nil {
		e = env{}
	}
	e[envDSN] = f.sc.ServerDSN
	return runChart(t, e, append(args, "-schema", f.sc.Name)...)
}

// incomplete counts the steps series() returns as incomplete for the arguments.
func (f *fixture) incomplete(t *testing.T, metric string, from, to time.Time, step, tz string) int {
	t.Helper()
	var n int
	require.NoError(t, f.pool.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE NOT complete) FROM "+
		pgx.Identifier{f.sc.Name}.Sanitize()+".series($1, $2, $3, $4::interval, '{}', $5)", metric, from, to, step, tz).Scan(&n))
	return n
}

// anomalyKinds counts the anomalies() rows of metric per kind.
func (f *fixture) anomalyKinds(t *testing.T, metric string, from, to time.Time, step string) map[string]int {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), "SELECT kind FROM "+pgx.Identifier{f.sc.Name}.Sanitize()+
		".anomalies($1, $2, $3::interval, $4)", from, to, step, metric)
	require.NoError(t, err)
	kinds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]int{}
	for _, k := range kinds {
		out[k]++
	}
	return out
}

var totalRe = regexp.MustCompile(`· total ([0-9.e+]+)\n`)

// total is the total a chart prints.
func total(t *testing.T, chart string) float64 {
	t.Helper()
	m := totalRe.FindStringSubmatch(chart)
	require.NotNil(t, m, chart)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// axis is the chart's x axis line.
func axis(t *testing.T, chart string) string {
	t.Helper()
	for _, l := range strings.Split(chart, "\n") {
		if strings.HasSuffix(l, "> time") {
			return l
		}
	}
	t.Fatalf("no axis in\n%s", chart)
	return ""
}

// TestChartFromTheDatabase: the chart of the last hour per minute holds exactly what was counted,
// draws the still-filling minute as incomplete ('?', as many as series() reports), and marks the
// drop and the spike track.anomalies flags, one mark per flagged minute.
func TestChartFromTheDatabase(t *testing.T) {
	f := newFixture(t, [2]int{20, 12}, [2]int{40, 38})
	from, to := f.end.Add(-time.Hour), time.Now()
	r := f.run(t, nil, "-metric", "new-signup", "-from", from.Format(time.RFC3339), "-to", to.Format(time.RFC3339Nano), "-utc", "-height", "4")
	require.Equal(t, exitOK, r.code, r.stderr)
	t.Logf("\n%s", r.stdout)
	assert.Empty(t, r.stderr)
	assert.Equal(t, f.counts.sum(from, to, 0, 1), total(t, r.stdout))
	assert.Contains(t, r.stdout, "^ new-signup per 1m · peak 600 at ")

	pending := f.incomplete(t, "new-signup", from, to, "1 minute", "UTC")
	require.Positive(t, pending, "the current minute is incomplete")
	assert.Equal(t, pending, strings.Count(axis(t, r.stdout), "?"))
	assert.Contains(t, r.stdout, fmt.Sprintf("incomplete: counts may still arrive (the current step, past the pipeline's watermark, or in an ingestion gap): %d %s",
		pending, plural(pending, "step", "steps")))

	kinds := f.anomalyKinds(t, "new-signup", from, to, "1 minute")
	require.Positive(t, kinds["drop"], "eight minutes of nothing at 60 a minute is a drop")
	require.Positive(t, kinds["spike"], "ten times as much is a spike")
	assert.Equal(t, kinds["drop"], strings.Count(r.stdout, drop)-1, "one mark per flagged minute, and the legend's")
	assert.Equal(t, kinds["spike"], strings.Count(r.stdout, spike)-1, "one mark per flagged minute, and the legend's")
	assert.Contains(t, r.stdout, "▼ drop ▲ spike: anomalous against the metric's baseline")

	// -mark=false draws the same chart without the marks.
	r = f.run(t, nil, "-metric", "new-signup", "-from", from.Format(time.RFC3339), "-to", to.Format(time.RFC3339Nano), "-utc", "-mark=false")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, drop)
	assert.NotContains(t, r.stdout, spike)

	// A filter draws its series only, and says why it marks nothing.
	r = f.run(t, nil, "-metric", "new-signup", "-filter", `{"service":"web-signup"}`, "-from", from.Format(time.RFC3339), "-to", to.Format(time.RFC3339Nano), "-utc")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, f.counts.sum(from, to, 1), total(t, r.stdout))
	assert.Contains(t, r.stdout, `^ new-signup {"service":"web-signup"} per 1m`)
	assert.Contains(t, r.stdout, "a chart with -filter marks none")
	assert.NotContains(t, r.stdout, drop)
}

// TestChartDatabaseRefusals: the database's refusals name the flag at fault, carry its hint, and
// exit 2: an unknown metric with the close names, steps finer than what is kept or not whole
// minutes, a zone Postgres cannot follow with the data kept, and a range older than every retention.
func TestChartDatabaseRefusals(t *testing.T) {
	f := newFixture(t, [2]int{20, 12}, [2]int{40, 38})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown metric", []string{"-metric", "new-sigup"},
			[]string{`trackchart: -metric: series: no metric named "new-sigup" has been counted; did you mean "new-signup"?`}},
		{"nothing close", []string{"-metric", "zzzzzzzzzzzzzzzz"},
			[]string{`-metric: series: no metric named "zzzzzzzzzzzzzzzz" has been counted; `, "metrics"}},
		{"not whole minutes", []string{"-metric", "new-signup", "-step", "90s"},
			[]string{"trackchart: -step: series: step ", "not a whole number of minutes", "use a multiple of"}},
		{"finer than kept", []string{"-metric", "new-signup", "-since", "30d", "-step", "1m"},
			[]string{"trackchart: -step: series: step ", "is finer than the data kept", "use a step of "}},
		{"days that are not whole", []string{"-metric", "new-signup", "-step", "36h"},
			[]string{"trackchart: -step: series: step ", "not a whole number of days"}},
		{"months mixed with days", []string{"-metric", "new-signup", "-step", "1mo1d", "-since", "1y"},
			[]string{"trackchart: -step: series: step ", "mixes months with days"}},
		{"a zone hours cannot follow", []string{"-metric", "new-signup", "-since", "20d", "-step", "1d", "-tz", "Asia/Kolkata"},
			[]string{"trackchart: -tz: series: ", "Asia/Kolkata", "whole hours"}},
		{"older than kept", []string{"-metric", "new-signup", "-since", "4y", "-step", "1d"},
			[]string{"trackchart: -since: series: since ", "is older than the data kept", "use a since after"}},
		{"listing an unknown metric", []string{"anomalies", "-metric", "new-sigup"},
			[]string{`trackchart: -metric: anomalies: no metric named "new-sigup" has been counted`}},
		{"a step anomalies cannot judge", []string{"anomalies", "-step", "90s"},
			[]string{"trackchart: -step: anomalies: step must be whole minutes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.run(t, nil, tt.args...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			assert.Empty(t, r.stdout)
			for _, w := range tt.want {
				assert.Contains(t, r.stderr, w)
			}
		})
	}
}

// TestChartDaysInZones: days start at local midnight in -tz, or in the environment's zone without
// it, and hold every count; their labels are whole dates; the footer names the zone.
func TestChartDaysInZones(t *testing.T) {
	f := newFixture(t, [2]int{20, 12}, [2]int{40, 38})
	for _, tt := range []struct {
		name string
		env  env
		args []string
		zone string
	}{
		{"-tz", nil, []string{"-tz", "America/New_York"}, "America/New_York"},
		{"the issue's 72h per 24h", env{"TZ": "America/New_York"}, []string{"-since", "72h", "-step", "24h"}, "America/New_York"},
		{"TZ", env{"TZ": "Asia/Kathmandu"}, nil, "Asia/Kathmandu"},
		{"half-hour zone", nil, []string{"-tz", "Asia/Kolkata"}, "Asia/Kolkata"},
		{"weeks", nil, []string{"-tz", "Europe/Berlin", "-since", "2w", "-step", "1w"}, "Europe/Berlin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-metric", "new-signup", "-since", "3d", "-step", "1d"}, tt.args...)
			r := f.run(t, tt.env, args...)
			require.Equal(t, exitOK, r.code, r.stderr)
			t.Logf("\n%s", r.stdout)
			loc, err := time.LoadLocation(tt.zone)
			require.NoError(t, err)
			assert.Equal(t, f.counts.sum(f.counts.start, time.Now().Add(time.Minute), 0, 1), total(t, r.stdout), "every count, in whole local days")
			assert.Contains(t, r.stdout, " "+tt.zone+" · total ")
			lines := strings.Split(r.stdout, "\n")
			var labels []string
			for i, l := range lines {
				if strings.HasSuffix(l, "> time") {
					labels = strings.Fields(lines[i+1])
				}
			}
			require.NotEmpty(t, labels)
			for _, l := range labels {
				_, err := time.ParseInLocation("01-02", l, loc)
				assert.NoError(t, err, "label %q is a whole date", l)
			}
			assert.Regexp(t, `\n +\d{4}-\d\d-\d\d 00:00 → `, r.stdout, "the first step starts at local midnight")
		})
	}
	// The default ranges of days and weeks stay where local days can be drawn.
	for _, step := range []string{"1d", "1w", "2w"} {
		r := f.run(t, nil, "-metric", "new-signup", "-step", step, "-tz", "America/New_York")
		assert.Equal(t, exitOK, r.code, "-step %s: %s", step, r.stderr)
		assert.Equal(t, f.counts.sum(f.counts.start, time.Now().Add(time.Minute), 0, 1), total(t, r.stdout))
	}
}

// TestChartIngestionGap: steps when no collector flushed are drawn incomplete, not as zeros.
func TestChartIngestionGap(t *testing.T) {
	f := newFixture(t, [2]int{0, 0}, [2]int{0, 0})
	ctx := context.Background()
	ident := pgx.Identifier{f.sc.Name}.Sanitize()
	gapFrom, gapTo := f.end.Add(-30*time.Minute), f.end.Add(-20*time.Minute)
	_, err := f.pool.Exec(ctx, "UPDATE "+ident+".collector_spans SET until = $1 WHERE collector = ''", gapFrom)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, "INSERT INTO "+ident+".collector_spans (collector, since, until, lateness, gap) "+
		"VALUES ('c1', $1, now() - interval '1 second', interval '0', interval '1 minute')", gapTo)
	require.NoError(t, err)
	// The collector was down: nothing arrived in the gap.
	for _, tbl := range []string{"rollup_minute", "total_minute"} {
		_, err = f.pool.Exec(ctx, "DELETE FROM "+ident+"."+tbl+" WHERE time >= $1 AND time < $2", gapFrom, gapTo)
		require.NoError(t, err)
	}
	from, to := f.end.Add(-time.Hour), time.Now()
	r := f.run(t, nil, "-metric", "new-signup", "-from", from.Format(time.RFC3339), "-to", to.Format(time.RFC3339Nano), "-utc")
	require.Equal(t, exitOK, r.code, r.stderr)
	t.Logf("\n%s", r.stdout)
	pending := f.incomplete(t, "new-signup", from, to, "1 minute", "UTC")
	assert.GreaterOrEqual(t, pending, 10, "the ten minutes of the gap")
	assert.Equal(t, pending, strings.Count(axis(t, r.stdout), "?"))
	assert.Regexp(t, `-\?{10,}`, strings.ReplaceAll(axis(t, r.stdout), "-?", "?"), "the gap's minutes in a row")
}

// TestListAnomalies: trackchart anomalies lists what track.anomalies returns, one line each, for
// one metric or every metric, and says so when there is none.
func TestListAnomalies(t *testing.T) {
	f := newFixture(t, [2]int{20, 12}, [2]int{40, 38})
	from, to := f.end.Add(-time.Hour), time.Now()
	kinds := f.anomalyKinds(t, "new-signup", from, to, "1 minute")
	require.Positive(t, kinds["drop"]+kinds["spike"])

	r := f.run(t, nil, "anomalies", "-from", from.Format(time.RFC3339), "-to", to.Format(time.RFC3339Nano), "-utc")
	require.Equal(t, exitOK, r.code, r.stderr)
	t.Logf("\n%s", r.stdout)
	assert.Contains(t, r.stdout, "anomalies of every metric per 1m, ")
	assert.Regexp(t, `\ntime +metric +kind +value +expected +normal range +score\n`, r.stdout)
	assert.Len(t, regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d +new-signup +drop +0 +\d`).FindAllString(r.stdout, -1), kinds["drop"])
	assert.Len(t, regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d +new-signup +spike +600 +\d`).FindAllString(r.stdout, -1), kinds["spike"])
	assert.NotContains(t, r.stdout, " other ", "other counts steadily")

	r = f.run(t, nil, "anomalies", "-metric", "other", "-from", from.Format(time.RFC3339), "-to", to.Format(time.RFC3339Nano), "-tz", "Asia/Kolkata")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `^no anomalies of other per 1m, \d{4}-\d\d-\d\d \d\d:\d\d → [-\d: ]+ Asia/Kolkata \(complete steps only\)\n$`, r.stdout)
}

// TestChartAsTheAnalyst: the read-only analyst role of trackctl grants is enough to draw, mark and
// list; a role without the grants gets an error saying which grant it lacks (exit 1).
func TestChartAsTheAnalyst(t *testing.T) {
	f := newFixture(t, [2]int{20, 12}, [2]int{40, 38})
	ctx := context.Background()
	suffix := strings.TrimPrefix(f.sc.Name, "t_")
	writer, analyst, stranger := "cw_"+suffix, "ca_"+suffix, "cs_"+suffix
	for _, role := range []string{writer, analyst, stranger} {
		_, err := f.pool.Exec(ctx, "CREATE ROLE "+role+" LOGIN")
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, role := range []string{writer, analyst, stranger} {
			_, _ = f.pool.Exec(context.Background(), "DROP OWNED BY "+role)
			_, _ = f.pool.Exec(context.Background(), "DROP ROLE "+role)
		}
	})
	for _, g := range pgrollup.Grants(f.sc.Name, writer, analyst) {
		_, err := f.pool.Exec(ctx, g)
		require.NoError(t, err, g)
	}
	_, err := f.pool.Exec(ctx, "GRANT USAGE ON SCHEMA "+f.sc.Name+" TO "+stranger)
	require.NoError(t, err)
	as := func(role string) env {
		return env{envDSN: strings.Replace(f.sc.ServerDSN, "postgres://postgres@", "postgres://"+role+"@", 1)}
	}
	from := f.end.Add(-time.Hour).Format(time.RFC3339)

	r := runChart(t, as(analyst), "-schema", f.sc.Name, "-metric", "new-signup", "-from", from, "-utc")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "▼ drop ▲ spike: anomalous")
	assert.NotContains(t, r.stdout, "not marked")
	r = runChart(t, as(analyst), "anomalies", "-schema", f.sc.Name, "-from", from, "-utc")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, " new-signup ")

	r = runChart(t, as(stranger), "-schema", f.sc.Name, "-metric", "new-signup", "-from", from, "-utc")
	assert.Equal(t, exitFailure, r.code, r.stderr)
	assert.Contains(t, r.stderr, "permission denied for function series; the role needs EXECUTE on "+f.sc.Name+".series (trackctl grants")
}
