package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/track"
)

// 13. A track process that counts nothing still shows as alive: its heartbeat (its resource and one
// track.heartbeat point of 0, every interval) passes the OTLP receiver and the sampler, and pgrollup
// records it in track.sources without counting anything; the collector itself shows live in
// track.ingestion, and the minutes before the watermark are complete.
func TestIdleSenderShowsAlive(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	ctx := context.Background()
	tr, err := track.New(ctx, track.WithEndpoint(c.GRPC), track.WithServiceName("e2e-idle"), track.WithInterval(200*time.Millisecond))
	require.NoError(t, err)
	defer func() { require.NoError(t, tr.Shutdown(context.Background())) }()

	conn, err := pgx.Connect(ctx, d.dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var instance string
	var first, last time.Time
	require.Eventually(t, func() bool {
		err := conn.QueryRow(ctx, "SELECT instance, first_seen, last_seen FROM "+d.schema+".sources WHERE service = 'e2e-idle'").
			Scan(&instance, &first, &last)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "the idle process's source is recorded")
	assert.NotEmpty(t, instance, "the track library sets service.instance.id")
	assert.False(t, last.Before(first))

	var heartbeats, live int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+d.schema+".series WHERE metric = 'track.heartbeat'").Scan(&heartbeats))
	assert.Zero(t, heartbeats, "a heartbeat counts nothing")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+d.schema+".ingestion WHERE kind = 'collector' AND live").Scan(&live))
	assert.Equal(t, 1, live, "the collector is live")
	var w time.Time
	require.NoError(t, conn.QueryRow(ctx, "SELECT "+d.schema+".watermark()").Scan(&w))
	assert.WithinDuration(t, time.Now().Add(-15*time.Second), w, 15*time.Second, "the watermark follows the live collector (lateness 15s)")
}

// 14. A zero means the service stopped, not the pipeline. A track process counts and exits while the
// collector keeps flushing: once the watermark has passed it, the minute after the exit reads 0 and is
// complete. Then the collector is SIGKILLed and a new one starts a few seconds later: the time no collector
// flushed is a gap in track.ingestion and in incomplete_ranges, and series() marks the minute holding it
// incomplete, while the earlier zeros stay complete and the total stays exact.
func TestZeroMeansTheServiceStopped(t *testing.T) {
	d := sharedDB(t)
	// A short lateness and staleness keep the test under two minutes; the rules are the defaults'.
	override := "exporters:\n  pgrollup:\n    completeness:\n      lateness: 1s\n      liveness_interval: 200ms\n      stale_after: 2s\n"
	c1 := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema, override: override})
	c1.start()
	ctx := context.Background()
	const metric, n = "e2e-stopping", 500
	tr, err := track.New(ctx, track.WithEndpoint(c1.GRPC), track.WithServiceName("e2e-stopping"), track.WithInterval(200*time.Millisecond))
	require.NoError(t, err)
	for range n {
		tr.Increment(metric)
	}
	require.NoError(t, tr.Shutdown(ctx))
	stoppedAt := time.Now()

	conn, err := pgx.Connect(ctx, d.dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	type bucket struct {
		at       time.Time
		value    float64
		complete bool
	}
	series := func(since, until time.Time) []bucket {
		rows, err := conn.Query(ctx, "SELECT time, value, complete FROM "+d.schema+".series($1, $2, $3, '1 minute')", metric, since, until)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (bucket, error) {
			var b bucket
			return b, r.Scan(&b.at, &b.value, &b.complete)
		})
		require.NoError(t, err)
		return out
	}
	sum := func(bs []bucket) (s float64) {
		for _, b := range bs {
			s += b.value
		}
		return s
	}

	// The first minute wholly after the exit, and the range up to its end.
	from := stoppedAt.Truncate(time.Minute).Add(-time.Minute)
	quiet := stoppedAt.Truncate(time.Minute).Add(time.Minute)
	to := quiet.Add(time.Minute)
	require.Eventually(t, func() bool {
		var w time.Time
		require.NoError(t, conn.QueryRow(ctx, "SELECT "+d.schema+".watermark()").Scan(&w))
		return !w.Before(to)
	}, 2*time.Minute, 250*time.Millisecond, "the watermark passes the minute after the service stopped")
	bs := series(from, to)
	require.Len(t, bs, 3)
	assert.Equal(t, float64(n), sum(bs), "every count is stored once")
	// (The minutes before the exit may overlap the moments before c1's first flush: a gap, so not asserted.)
	assert.Equal(t, bucket{quiet.UTC(), 0, true}, bucket{bs[2].at.UTC(), bs[2].value, bs[2].complete},
		"the service stopped: its minute reads 0, and complete")

	// Now the pipeline stops: no collector flushes for a few seconds.
	c1.kill()
	killedAt := time.Now()
	time.Sleep(3 * time.Second)
	c2 := newCollector(t, "c2", collectorOptions{dsn: d.dsn, schema: d.schema, override: override})
	c2.start()
	var gapSince, gapUntil time.Time
	require.Eventually(t, func() bool {
		err := conn.QueryRow(ctx, "SELECT since, until FROM "+d.schema+".ingestion WHERE kind = 'gap' AND since <= $1 AND until >= $2",
			killedAt, killedAt.Add(2*time.Second)).Scan(&gapSince, &gapUntil)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "track.ingestion shows the time no collector flushed as a gap")
	var reasons []string
	rows, err := conn.Query(ctx, "SELECT reason FROM "+d.schema+".incomplete_ranges($1, $2) WHERE since < $3 AND until > $1",
		killedAt.Truncate(time.Minute), time.Now(), killedAt.Add(time.Second))
	require.NoError(t, err)
	reasons, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Contains(t, reasons, "gap", "incomplete_ranges reports the outage")

	bs = series(from, killedAt.Truncate(time.Minute).Add(time.Minute))
	assert.Equal(t, float64(n), sum(bs), "the total is unchanged by the outage")
	last := bs[len(bs)-1]
	assert.False(t, last.complete, "the minute of the outage (%v) is not complete", last.at)
	assert.True(t, bs[2].complete, "the minute after the service stopped stays complete: %+v", bs[2])
	assert.Zero(t, bs[2].value)
}
