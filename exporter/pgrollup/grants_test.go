package pgrollup

import (
	"context"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/trackhq/track/internal/pgtest"
)

// TestGrants applies the grants trackctl prints (the README shows them for schema track) and checks that the
// writer can run the exporter with migrate_on_start: false and that the analyst reads the views and
// the function but not the tables.
func TestGrants(t *testing.T) {
	sc := pgtest.NewSchema(t)
	owner := startExporter(t, sc) // migrates as the owner
	ctx := context.Background()
	suffix := strings.TrimPrefix(sc.Name, "t_")
	writer, analyst := "w_"+suffix, "a_"+suffix
	grants := append([]string{"CREATE ROLE " + writer + " LOGIN", "CREATE ROLE " + analyst + " LOGIN"},
		schema.Grants(sc.Name, writer, analyst)...)
	for _, g := range grants {
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

	w := startExporter(t, sc, func(c *Config) {
		c.DSN = configopaque.String(roleDSN(writer))
		c.MigrateOnStart = false
	})
	at := time.Now().UTC().Add(-time.Hour)
	w.push(t, pt{metric: "granted", service: "svc", at: at, value: 2, isInt: true})
	w.push(t, pt{metric: "granted", service: "svc", kind: "cumulative", at: at.Add(time.Minute), value: 5, isInt: true})
	// Events on a day without a partition yet: the writer creates it through the function.
	w.pushEvents(t, ev{name: "signup_start", service: "svc", at: at.Add(-10 * day), user: "u1"},
		ev{name: "signup_start", service: "svc", at: at, user: "u2"},
		ev{name: "signup_profile", service: "svc", at: at.Add(time.Minute), user: "u2"},
		ev{name: "error", service: "svc", at: at, body: "boom"})
	require.NoError(t, w.runRetention(ctx))
	w.now = func() time.Time { return time.Now().Add(89 * day) }
	require.NoError(t, w.eventRetention(ctx), "the writer drops expired partitions through the function")
	w.now = time.Now

	conn, err := pgx.Connect(ctx, roleDSN(analyst))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v float64
	require.NoError(t, conn.QueryRow(ctx, "SELECT sum(value) FROM "+sc.Name+".minutely WHERE metric = 'granted'").Scan(&v))
	assert.Equal(t, 7.0, v, "a delta point and a cumulative one (its first sight, started 10 s before)")
	require.NoError(t, conn.QueryRow(ctx, "SELECT sum(value) FROM "+sc.Name+".series('granted', now() - interval '6 hours', now(), interval '1 minute')").Scan(&v))
	assert.Equal(t, 7.0, v)
	require.NoError(t, conn.QueryRow(ctx, "SELECT users FROM "+sc.Name+".funnel(ARRAY['signup_start','signup_profile'], now() - interval '1 day', now(), interval '30 minutes') WHERE step = 2").Scan(&v))
	assert.Equal(t, 1.0, v)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count FROM "+sc.Name+".event_errors WHERE message = 'boom'").Scan(&v))
	assert.Equal(t, 1.0, v)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+sc.Name+".events").Scan(&v))
	assert.Equal(t, 3.0, v, "the 10-day-old event went with its partition")
	for _, q := range []string{"SELECT count(*) FROM " + sc.Name + ".sources", "SELECT count(*) FROM " + sc.Name + ".ingestion",
		"SELECT count(*) FROM " + sc.Name + ".incomplete_ranges(now() - interval '1 day', now())"} {
		require.NoError(t, conn.QueryRow(ctx, q).Scan(&v), q)
		assert.Positive(t, v, q)
	}
	var wm time.Time
	require.NoError(t, conn.QueryRow(ctx, "SELECT "+sc.Name+".watermark()").Scan(&wm))
	assert.WithinDuration(t, time.Now(), wm, time.Minute, "the writer's flushes moved the watermark")
	for _, fn := range []string{"ensure_event_partitions('2020-01-01', '2020-01-02')", "drop_event_partitions(now())"} {
		_, err := conn.Exec(ctx, "SELECT "+sc.Name+"."+fn)
		require.ErrorContains(t, err, "permission denied", fn)
	}
	for _, table := range []string{"rollup_minute", "series", "item_keys", "cumulative_streams", "collector_spans", "source_seen"} {
		_, err := conn.Exec(ctx, "SELECT 1 FROM "+sc.Name+"."+table+" LIMIT 1")
		require.ErrorContains(t, err, "permission denied", table)
	}
	_, err = conn.Exec(ctx, "INSERT INTO "+sc.Name+".rollup_day VALUES (1, now(), 1)")
	require.ErrorContains(t, err, "permission denied")
}
