package pgrollup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minuteValue is what the tz fixture stores for a series in the minute starting at Unix minute m.
func minuteValue(series int, m int64) float64 {
	if series == 1 {
		return float64(m%7 + 1)
	}
	return float64(m % 5)
}

// tzFixture holds the minutes stored by seedMinutes: for series 1 and 2 of metric "tz" (services s
// and t), one minute row per minute of each window, with the hour and day rows that are their UTC
// sums, and the totals, as the exporter writes them.
type tzFixture struct {
	te      *testExporter
	windows [][2]time.Time
}

func seedMinutes(t *testing.T, te *testExporter, windows ...[2]time.Time) *tzFixture {
	t.Helper()
	ctx := context.Background()
	s := te.schema
	_, err := te.pool.Exec(ctx, `INSERT INTO `+s+`.series (id, key, metric, service, attributes)
VALUES (1, gen_random_uuid(), 'tz', 's', '{}'), (2, gen_random_uuid(), 'tz', 't', '{}')`)
	require.NoError(t, err)
	for _, w := range windows {
		_, err := te.pool.Exec(ctx, `INSERT INTO `+s+`.rollup_minute (series_id, time, value)
SELECT v.id, to_timestamp(m * 60), CASE v.id WHEN 1 THEN m % 7 + 1 ELSE m % 5 END
  FROM generate_series($1::bigint, $2::bigint - 1) m, (VALUES (1), (2)) v(id)
ON CONFLICT DO NOTHING`, w[0].Unix()/60, w[1].Unix()/60)
		require.NoError(t, err)
	}
	for _, q := range []string{
		`INSERT INTO ` + s + `.rollup_hour SELECT series_id, date_bin('1 hour', time, timestamptz 'epoch'), sum(value) FROM ` + s + `.rollup_minute GROUP BY 1, 2`,
		`INSERT INTO ` + s + `.rollup_day SELECT series_id, date_bin('1 day', time, timestamptz 'epoch'), sum(value) FROM ` + s + `.rollup_minute GROUP BY 1, 2`,
		`ANALYZE ` + s + `.rollup_minute, ` + s + `.rollup_hour, ` + s + `.rollup_day, ` + s + `.series`,
	} {
		_, err := te.pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	recomputeTotals(t, te.pool, s)
	return &tzFixture{te, windows}
}

// want is the sum of the stored minutes of the series (1, 2, or 0 for both) in [from, to).
func (f *tzFixture) want(series int, from, to time.Time) float64 {
	var sum float64
	for m := from.Unix() / 60; m < to.Unix()/60; m++ {
		at := time.Unix(m*60, 0)
		for _, w := range f.windows {
			if !at.Before(w[0]) && at.Before(w[1]) {
				for _, id := range []int{1, 2} {
					if series == 0 || series == id {
						sum += minuteValue(id, m)
					}
				}
				break
			}
		}
	}
	return sum
}

// tzRow is one row of series with its completeness.
type tzRow struct {
	At       time.Time
	Value    float64
	Complete bool
}

func (f *tzFixture) series(t *testing.T, since, until time.Time, step, filter, tz string) []tzRow {
	t.Helper()
	rows, err := f.te.pool.Query(context.Background(),
		"SELECT time, value, complete FROM "+f.te.schema+".series('tz', $1, $2, $3::interval, $4::jsonb, $5)",
		since, until, step, filter, tz)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[tzRow])
	require.NoError(t, err)
	return out
}

// localMidnight returns the start of the local day of t in loc, days days later.
func localMidnight(t time.Time, loc *time.Location, days int) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+days, 0, 0, 0, 0, loc)
}

// lastTransition returns the start of the latest local day in loc, within the last year, that lasts
// hours hours (23: spring forward, 25: fall back).
func lastTransition(t *testing.T, loc *time.Location, hours int) time.Time {
	t.Helper()
	for d := -2; d > -366; d-- {
		day := localMidnight(time.Now(), loc, d)
		if localMidnight(day, loc, 1).Sub(day) == time.Duration(hours)*time.Hour {
			return day
		}
	}
	t.Fatalf("%s has no %d-hour day in the last year", loc, hours)
	return time.Time{}
}

// checkCalendar checks rows against the buckets [starts[i], starts[i+1]) in loc: each row starts at
// its bucket's start, holds exactly the counts of its bucket for the filter, and is complete.
func (f *tzFixture) checkCalendar(t *testing.T, rows []tzRow, starts []time.Time, series int, name string) {
	t.Helper()
	require.Len(t, rows, len(starts)-1, name)
	for i, r := range rows {
		assert.True(t, r.At.Equal(starts[i]), "%s: bucket %d starts at %s, want %s", name, i, r.At.In(starts[i].Location()), starts[i])
		assert.Equal(t, f.want(series, starts[i], starts[i+1]), r.Value, "%s: bucket %d (%s, %s long)", name, i, starts[i], starts[i+1].Sub(starts[i]))
		assert.True(t, r.Complete, "%s: bucket %d is in the stored history", name, i)
	}
}

// TestSeriesLocalDays: days in a time zone start at local midnight and hold exactly that local day's
// counts: 23 and 25 hours across the DST changes of America/New_York and Europe/Berlin, and local
// days at +05:30 (Asia/Kolkata) and +05:45 (Asia/Kathmandu), which only minute rollups can follow.
// Weeks start on a local Monday; months on the 1st at local midnight.
func TestSeriesLocalDays(t *testing.T) {
	te := startExporter(t, nil, func(c *Config) { c.Retention.Hour = Period(400 * day) })
	zones := map[string]*time.Location{}
	for _, name := range []string{"America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu"} {
		loc, err := time.LoadLocation(name)
		require.NoError(t, err)
		zones[name] = loc
	}
	type dst struct {
		zone  string
		hours int
		day   time.Time
	}
	var changes []dst
	var windows [][2]time.Time
	for _, zone := range []string{"America/New_York", "Europe/Berlin"} {
		for _, hours := range []int{23, 25} {
			d := lastTransition(t, zones[zone], hours)
			changes = append(changes, dst{zone, hours, d})
			windows = append(windows, [2]time.Time{localMidnight(d, zones[zone], -2), localMidnight(d, zones[zone], 3)})
		}
	}
	berlin := zones["Europe/Berlin"]
	y, m, _ := time.Now().In(berlin).Date()
	monthsFrom, monthsTo := time.Date(y, m-3, 1, 0, 0, 0, 0, berlin), time.Date(y, m, 1, 0, 0, 0, 0, berlin)
	windows = append(windows, [2]time.Time{monthsFrom.Add(-day), monthsTo.Add(day)},
		[2]time.Time{time.Now().Add(-28 * day), time.Now().Add(-day)})
	f := seedMinutes(t, te, windows...)

	for _, c := range changes {
		loc := zones[c.zone]
		starts := []time.Time{localMidnight(c.day, loc, -1), c.day, localMidnight(c.day, loc, 1), localMidnight(c.day, loc, 2)}
		require.Equal(t, time.Duration(c.hours)*time.Hour, starts[2].Sub(starts[1]))
		for _, tc := range []struct {
			filter string
			series int
		}{{`{}`, 0}, {`{"service": "s"}`, 1}} {
			name := fmt.Sprintf("%s %d-hour day %s %s", c.zone, c.hours, c.day.Format(time.DateOnly), tc.filter)
			// since inside the first day: the bucket holding it starts at its local midnight.
			rows := f.series(t, starts[0].Add(5*time.Hour), starts[3], "1 day", tc.filter, c.zone)
			f.checkCalendar(t, rows, starts, tc.series, name)
			// '24 hours' is a calendar day too.
			assert.Equal(t, rows, f.series(t, starts[0], starts[3], "24 hours", tc.filter, c.zone), name)
		}
	}

	for _, zone := range []string{"Asia/Kolkata", "Asia/Kathmandu"} {
		loc := zones[zone]
		var starts []time.Time
		for d := -6; d <= -2; d++ {
			starts = append(starts, localMidnight(time.Now(), loc, d))
		}
		_, offset := starts[0].Zone()
		require.NotZero(t, offset%3600, "%s is not a whole-hour zone", zone)
		rows := f.series(t, starts[0], starts[len(starts)-1], "1 day", `{}`, zone)
		f.checkCalendar(t, rows, starts, 0, zone)
		utc := f.series(t, starts[0], starts[len(starts)-1], "1 day", `{}`, "UTC")
		assert.NotEqual(t, rows[1].At, utc[1].At, "%s: local days are not UTC days", zone)
	}

	ny := zones["America/New_York"]
	var weeks []time.Time
	for d := -27; d <= -2; d++ {
		if day := localMidnight(time.Now(), ny, d); day.Weekday() == time.Monday {
			weeks = append(weeks, day)
		}
	}
	rows := f.series(t, weeks[0].Add(30*time.Hour), weeks[len(weeks)-1], "1 week", `{}`, "America/New_York")
	f.checkCalendar(t, rows, weeks, 0, "weeks in New York")

	var months []time.Time
	for d := monthsFrom; !d.After(monthsTo); d = time.Date(d.Year(), d.Month()+1, 1, 0, 0, 0, 0, berlin) {
		months = append(months, d)
	}
	rows = f.series(t, monthsFrom.Add(day+time.Hour), monthsTo, "1 month", `{"service": "s"}`, "Europe/Berlin")
	f.checkCalendar(t, rows, months, 1, "months in Berlin")
	for _, step := range []string{"3 months", "1 year"} {
		rows = f.series(t, monthsFrom, monthsTo, step, `{}`, "Europe/Berlin")
		require.NotEmpty(t, rows, step)
		for _, r := range rows {
			local := r.At.In(berlin)
			assert.Equal(t, 1, local.Day(), step)
			assert.Zero(t, local.Hour(), step)
			if step == "1 year" {
				assert.Equal(t, time.January, local.Month())
			} else {
				assert.Zero(t, (local.Month()-1)%3, "quarters start in January, April, July, October")
			}
		}
	}
}

// TestSeriesErrors: every refusal of series names its argument, has its SQLSTATE, and a HINT saying
// what to do instead.
func TestSeriesErrors(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour)
	te.push(t, pt{metric: "new-signup", service: "web", at: at, value: 1},
		pt{metric: "new-signups-eu", service: "web", at: at, value: 1},
		pt{metric: "cards-checked", service: "web", at: at, value: 1})
	const (
		undefined = "42704" // undefined_object
		invalid   = "22023" // invalid_parameter_value
	)
	tests := []struct {
		args, code, message, hint string
	}{
		{`'new-singup', now() - interval '1 hour', now(), interval '1 minute'`, undefined,
			`series: no metric named "new-singup" has been counted`, `did you mean "new-signup"`},
		{`'new-signups', now() - interval '1 hour', now(), interval '1 minute'`, undefined,
			`no metric named "new-signups"`, `"new-signup", "new-signups-eu"`},
		{`'zzzzzzzz', now() - interval '1 hour', now(), interval '1 minute'`, undefined,
			`no metric named "zzzzzzzz"`, `SELECT metric FROM`},
		{`NULL, now() - interval '1 hour', now(), interval '1 minute'`, undefined, `no metric named "NULL"`, `SELECT metric FROM`},
		{`'new-signup', now(), now() - interval '1 hour', interval '1 minute'`, invalid, `must be after since`, `non-empty range`},
		{`'new-signup', NULL, now(), interval '1 minute'`, invalid, `since (<NULL>)`, `non-empty range`},
		{`'new-signup', now() - interval '1 hour', now(), interval '0 minutes'`, invalid, `step must be a positive interval`, `interval '1 minute'`},
		{`'new-signup', now() - interval '1 hour', now(), NULL`, invalid, `step must be a positive interval, got <NULL>`, `'1 month'`},
		{`'new-signup', now() - interval '1 hour', now(), interval '1 month 2 days'`, invalid, `mixes months with days or time`, `whole months`},
		{`'new-signup', now() - interval '3 days', now(), interval '36 hours'`, invalid, `not a whole number of days`, `'1 day'`},
		{`'new-signup', now() - interval '1 hour', now(), interval '30 seconds'`, invalid,
			`step 00:00:30 is finer than the finest data kept, 1 minute`, `use a step of 1 minute or a multiple of it`},
		{`'new-signup', now() - interval '1 hour', now(), interval '90 seconds'`, invalid,
			`step 00:01:30 is not a whole number of minutes`, `use a multiple of 1 minute, for example 1 minute or 2 minutes`},
		{`'new-signup', now() - interval '30 days', now(), interval '1 minute'`, invalid,
			`minutes are kept 14 days; for a range from 30 days ago use a step of 1 hour or more`, `or a since within the last 14 days`},
		{`'new-signup', now() - interval '30 days', now(), interval '90 minutes'`, invalid, `not a whole number of hours`, `multiple of 1 hour`},
		{`'new-signup', now() - interval '10 years', now(), interval '1 day'`, invalid, `older than the data kept: day rollups`, `use a since after`},
		{`'new-signup', now() - interval '1 day', now(), interval '1 hour', '{}', 'Mars/Olympus'`, invalid,
			`time zone "Mars/Olympus" is not recognized`, `'Europe/Berlin'`},
		{`'new-signup', now() - interval '1 day', now(), interval '1 hour', '{}', NULL`, invalid, `tz must be a time zone name`, `'UTC'`},
		{`'new-signup', now() - interval '1 day', now(), interval '1 hour', NULL`, invalid, `filter must be a JSON object, got <NULL>`, `'{}'`},
		{`'new-signup', now() - interval '1 day', now(), interval '1 hour', '["web"]'`, invalid, `filter must be a JSON object`, `"service"`},
		{`'new-signup', now() - interval '30 days', now(), interval '1 day', '{}', 'Asia/Kolkata'`, invalid,
			`steps in time zone Asia/Kolkata do not start on whole hours`, `since within the last 14 days (where minute rollups are kept), or tz 'UTC'`},
		{`'new-signup', now() - interval '30 days', now(), interval '1 hour', '{}', 'Asia/Kathmandu'`, invalid,
			`do not start on whole hours`, `minute rollups`},
		{`'new-signup', now() - interval '120 days', now(), interval '1 day', '{}', 'America/New_York'`, invalid,
			`do not start on whole days`, `since within the last 90 days (where hour rollups are kept), or tz 'UTC'`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			_, err := te.pool.Exec(ctx, "SELECT * FROM "+te.schema+".series("+tt.args+")")
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, tt.code, pgErr.Code)
			assert.Contains(t, pgErr.Message, tt.message)
			assert.Contains(t, pgErr.Hint, tt.hint)
		})
	}
	// What the errors send elsewhere works: UTC days over 120 days, local days in Kolkata over 10.
	for _, args := range []string{
		`'new-signup', now() - interval '120 days', now(), interval '1 day', '{}', 'UTC'`,
		`'new-signup', now() - interval '10 days', now(), interval '1 day', '{}', 'Asia/Kolkata'`,
		`'new-signup', now() - interval '30 days', now(), interval '1 hour', '{}', 'America/New_York'`,
	} {
		var n int
		require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+".series("+args+")").Scan(&n), args)
		assert.Positive(t, n, args)
	}
}
