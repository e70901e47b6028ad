package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/exporter/pgrollup"
	"github.com/trackhq/track/internal/pgtest"
)

// perMinute is the signups per minute of the test's history: far above the 5 per bucket at which
// a drop to zero must be flagged within 2 buckets.
const perMinute = 30

// countMinutes writes n per minute of metric into [from, to) as the exporter keeps them: the
// metric's per-minute and per-hour totals (what the anomaly detector reads), added to what is
// there.
func countMinutes(t *testing.T, pool *pgxpool.Pool, schema, metric string, from, to time.Time, n float64) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO `+schema+`.series (key, metric, service, attributes)
VALUES (gen_random_uuid(), $1, 'login-service', '{}')
ON CONFLICT DO NOTHING`, metric)
	require.NoError(t, err)
	for _, table := range []struct{ name, unit string }{{"total_minute", "minute"}, {"total_hour", "hour"}} {
		_, err := pool.Exec(ctx, `INSERT INTO `+schema+`.`+table.name+` (metric, time, value)
SELECT $1, date_trunc('`+table.unit+`', m), count(*) * $4::float8
  FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 minute', interval '1 minute') AS m
 GROUP BY 2
ON CONFLICT (metric, time) DO UPDATE SET value = `+table.name+`.value + excluded.value`, metric, from, to, n)
		require.NoError(t, err)
	}
}

// migratedSchema is a new schema on the shared test server with the pgrollup exporter's migrations.
func migratedSchema(t *testing.T) (*pgtest.Schema, *pgxpool.Pool) {
	t.Helper()
	sc := pgtest.NewSchema(t)
	pool := sc.Pool(t)
	_, err := pgrollup.Migrate(context.Background(), pool, sc.Name)
	require.NoError(t, err)
	return sc, pool
}

// refreshBaselines does what the collector does every hour and returns how many metrics are judged.
func refreshBaselines(t *testing.T, pool *pgxpool.Pool, schema string) int {
	t.Helper()
	var judged int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT "+schema+".refresh_anomaly_baselines()").Scan(&judged))
	return judged
}

// TestWatcherAgainstPostgres runs the command, one poll at a time (-once, with -state), against
// real Postgres: a metric counted 30 a minute for 5 hours drops to zero, and the watcher posts its
// start once; the next poll posts nothing; once the metric counts again the watcher posts its end.
func TestWatcherAgainstPostgres(t *testing.T) {
	sc, pool := migratedSchema(t)
	ctx := context.Background()

	now := time.Now().UTC().Truncate(time.Minute)
	dropAt := now.Add(-6 * time.Minute)
	countMinutes(t, pool, sc.Name, "new-signup", now.Add(-5*time.Hour), dropAt, perMinute)
	countMinutes(t, pool, sc.Name, "new-login", now.Add(-5*time.Hour), now.Add(3*time.Minute), 4*perMinute)
	require.Equal(t, 2, refreshBaselines(t, pool, sc.Name), "both metrics have a baseline")

	h := newHookServer(t)
	state := filepath.Join(t.TempDir(), "state.json")
	poll := func() {
		t.Helper()
		var log bytes.Buffer
		err := run(ctx, []string{"-once", "-dsn", sc.ServerDSN, "-schema", sc.Name, "-webhook", h.URL + "/hook",
			"-state", state, "-end-after", "0s"}, &log)
		require.NoError(t, err, log.String())
		t.Log(log.String())
	}

	poll()
	msgs := h.messages()
	require.Len(t, msgs, 1, "the drop, and nothing on the metric that kept counting")
	start := msgs[0]
	assert.Equal(t, Started, start.Event)
	assert.Equal(t, "new-signup", start.Metric)
	assert.Equal(t, "drop", start.Kind)
	assert.Equal(t, 0.0, start.Latest.Value)
	assert.Greater(t, start.Latest.Expected, 5.0)
	assert.False(t, start.Since.Before(dropAt), "since %s, the drop started at %s", start.Since, dropAt)
	assert.LessOrEqual(t, start.Since.Sub(dropAt), time.Minute, "flagged within 2 buckets of the drop")
	assert.Contains(t, start.Text, "*new-signup*: drop since")
	t.Logf("posted: %s", start.Text)

	poll()
	assert.Len(t, h.messages(), 1, "no repeat while the drop lasts")

	// Signups are back, in the minutes the view judges now and in the next few.
	countMinutes(t, pool, sc.Name, "new-signup", dropAt, time.Now().UTC().Truncate(time.Minute).Add(3*time.Minute), perMinute)
	poll()
	msgs = h.messages()
	require.Len(t, msgs, 2)
	end := msgs[1]
	assert.Equal(t, Ended, end.Event)
	assert.Equal(t, "new-signup", end.Metric)
	assert.Equal(t, start.Since, end.Since)
	require.NotNil(t, end.Until)
	t.Logf("posted: %s", end.Text)
	assert.Equal(t, h.tries(), 2, "one request per message")
}

// TestRunPollsUntilStopped runs the command as a service: it polls every -interval, posts the drop
// once however many polls see it, and returns nil when its context ends (SIGINT, SIGTERM).
func TestRunPollsUntilStopped(t *testing.T) {
	sc, pool := migratedSchema(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now().UTC().Truncate(time.Minute)
	countMinutes(t, pool, sc.Name, "new-signup", now.Add(-5*time.Hour), now.Add(-6*time.Minute), perMinute)
	require.Equal(t, 1, refreshBaselines(t, pool, sc.Name))

	h := newHookServer(t)
	done := make(chan error, 1)
	var log bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-interval", "100ms", "-dsn", sc.ServerDSN, "-schema", sc.Name, "-webhook", h.URL}, &log)
	}()
	require.Eventually(t, func() bool { return len(h.messages()) == 1 }, 20*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second) // several more polls
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	assert.Len(t, h.messages(), 1, "posted once over many polls")
	assert.Contains(t, log.String(), "stopping; open anomalies: 1")
}

// TestUnknownMetric: a typo in -metric is a usage error with the database's hint, not a watcher that
// never posts; a metric that was counted is watched.
func TestUnknownMetric(t *testing.T) {
	sc, pool := migratedSchema(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Minute)
	countMinutes(t, pool, sc.Name, "new-signup", now.Add(-time.Hour), now, perMinute)
	h := newHookServer(t)
	args := []string{"-once", "-dsn", sc.ServerDSN, "-schema", sc.Name, "-webhook", h.URL}

	var log bytes.Buffer
	err := run(ctx, append(args, "-metric", "new-sigup"), &log)
	require.ErrorAs(t, err, new(*usageError))
	assert.Contains(t, err.Error(), "-metric")
	assert.Contains(t, err.Error(), `"new-sigup"`)
	require.NoError(t, run(ctx, append(args, "-metric", "new-signup"), &log), log.String())
	assert.Zero(t, h.tries(), "a young metric with nothing anomalous: nothing to post")
}

// TestWatcherWithoutTheView is the error a schema older than migration 7 gets.
func TestWatcherWithoutTheView(t *testing.T) {
	sc := pgtest.NewSchema(t)
	_, err := sc.Pool(t).Exec(context.Background(), "SELECT 1")
	require.NoError(t, err)
	h := newHookServer(t)
	var log bytes.Buffer
	err = run(context.Background(), []string{"-once", "-dsn", sc.ServerDSN, "-schema", sc.Name, "-webhook", h.URL}, &log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "trackctl migrate")
	assert.Zero(t, h.tries())
}
