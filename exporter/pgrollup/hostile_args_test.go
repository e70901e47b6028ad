package pgrollup

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileQueryArgs: odd arguments to series() and anomalies() get an error with its SQLSTATE and a
// HINT saying what to do instead, never a raw internal error nor a silent wrong answer: infinite
// times, bare UTC offsets (which Postgres reads west of UTC, the opposite of ISO 8601), an empty
// metric name, anomalies over a range older than the data kept, and more than a million steps.
func TestHostileQueryArgs(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour)
	te.push(t, pt{metric: "new-signup", service: "web", at: at, value: 1},
		pt{metric: "cards-checked", service: "web", at: at, value: 1})
	const invalid, undefined = "22023", "42704"
	tests := []struct {
		call, code, message, hint, hintNot string
	}{
		{`series('new-signup', now() - interval '1 hour', 'infinity', interval '1 hour')`, invalid,
			`must be finite times`, `until now()`, ``},
		{`series('new-signup', 'infinity', 'infinity', interval '1 hour')`, invalid,
			`must be after since`, `non-empty range`, ``},
		{`series('new-signup', '-infinity', now(), interval '1 hour')`, invalid,
			`must be finite times`, `since now()`, ``},
		{`series('new-signup', now() - interval '2 days', now(), interval '1 day', '{}', '+05:30')`, invalid,
			`"+05:30" is a bare UTC offset`, `'Asia/Kolkata'`, ``},
		{`series('new-signup', now() - interval '2 days', now(), interval '1 hour', '{}', '-3')`, invalid,
			`bare UTC offset`, `IANA name`, ``},
		{`series('', now() - interval '1 hour', now(), interval '1 minute')`, undefined,
			`no metric named "" has been counted`, `SELECT metric FROM`, `did you mean`},
		{`series('new-signup', now() - interval '1 hour', now() + interval '100 years', interval '1 minute')`, invalid,
			`makes more than 1,000,000 steps`, `use a step of at least`, ``},
		{`series('new-signup', now() - interval '1 hour', now() + interval '10000 years', interval '1 day')`, invalid,
			`makes more than 1,000,000 steps`, `or a shorter range`, ``},
		{`anomalies('-infinity', now(), interval '1 minute')`, invalid,
			`must be finite times`, `now() - interval '1 hour'`, ``},
		{`anomalies(now() - interval '1 hour', 'infinity', interval '1 minute')`, invalid,
			`must be finite times`, `now() - interval '1 hour'`, ``},
		{`anomalies(now() - interval '1 year', now() - interval '360 days', interval '1 hour')`, invalid,
			`older than the data kept: hours are kept 90 days`, `use a since after`, ``},
		{`anomalies(now() - interval '1 hour', now(), interval '1 minute', '')`, undefined,
			`no metric named ""`, `SELECT metric FROM`, `did you mean`},
	}
	for _, tt := range tests {
		t.Run(tt.call, func(t *testing.T) {
			_, err := te.pool.Exec(ctx, "SELECT * FROM "+te.schema+"."+tt.call)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, tt.code, pgErr.Code, pgErr.Message)
			assert.Contains(t, pgErr.Message, tt.message)
			assert.Contains(t, pgErr.Hint, tt.hint)
			if tt.hintNot != "" {
				assert.NotContains(t, pgErr.Hint, tt.hintNot)
			}
		})
	}
	// What the hints send to works: IANA names and POSIX names that say their base, finite ranges,
	// anomalies over the hours kept.
	for _, call := range []string{
		`series('new-signup', now() - interval '2 days', now(), interval '1 day', '{}', 'Asia/Kolkata')`,
		`series('new-signup', now() - interval '2 days', now(), interval '1 day', '{}', 'UTC+3')`,
		`series('new-signup', now() - interval '2 days', now(), interval '1 day', '{}', 'europe/berlin')`,
		`anomalies(now() - interval '80 days', now() - interval '79 days', interval '1 hour')`,
	} {
		_, err := te.pool.Exec(ctx, "SELECT * FROM "+te.schema+"."+call)
		assert.NoError(t, err, call)
	}
}

// TestSeriesCurrentMinuteOnly: a metric whose only count is in the current minute is known to series()
// (no undefined_object), reads its value there, and that minute is not complete.
func TestSeriesCurrentMinuteOnly(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	te.push(t, pt{metric: "brand-new", service: "web", at: now, value: 3})
	var value float64
	var complete bool
	require.Eventually(t, func() bool {
		err := te.pool.QueryRow(ctx, "SELECT value, complete FROM "+te.schema+
			".series('brand-new', $1, $2, interval '1 minute') WHERE time = $1", now.Truncate(time.Minute), now.Truncate(time.Minute).Add(time.Minute)).
			Scan(&value, &complete)
		return err == nil && value == 3
	}, 5*time.Second, 20*time.Millisecond)
	assert.False(t, complete, "the current minute is still filling")
}
