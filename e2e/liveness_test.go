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
