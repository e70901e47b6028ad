package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/internal/pgtest"
)

// healthGate makes health_check answer from the components' status (see examples/collector.yaml).
const healthGate = "--feature-gates=+extension.healthcheck.useComponentStatus"

// healthCode is the HTTP status of the collector's health endpoint, or 0 when it does not answer.
func healthCode(c *collector) int {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + c.Health + "/")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// 11. Start the collector while Postgres is down: it starts, accepts OTLP into its persistent
// queue and reports itself unhealthy; once Postgres is started it migrates, writes exactly what
// the senders counted (nothing lost while it waited), and reports healthy again.
func TestPostgresDownAtStart(t *testing.T) {
	srv, err := pgtest.NewServer()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	sc := srv.NewSchema(t) // an empty schema: the collector migrates it once Postgres is back
	d := db{dsn: sc.ServerDSN, schema: sc.Name}
	require.NoError(t, srv.Stop())
	t.Log("postgres stopped before the collector starts")

	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema, args: []string{healthGate}, degraded: true})
	began := time.Now()
	c.start()
	t.Logf("collector accepting OTLP %s after its start, postgres down", time.Since(began).Round(10*time.Millisecond))
	// The recoverable error turns the endpoint unhealthy once it is older than recovery_duration
	// (15s in examples/collector.yaml).
	require.Eventually(t, func() bool { return healthCode(c) == http.StatusInternalServerError }, 40*time.Second, 200*time.Millisecond,
		"health_check reports the collector unhealthy while postgres is down")

	var specs []senderSpec
	for range 3 {
		specs = append(specs, senderSpec{metric: "e2e-pg-down-at-start", n: 3000, duration: 8 * time.Second, endpoint: c.GRPC})
	}
	rs := runSenders(t, specs, func() {
		time.Sleep(5 * time.Second)
		assert.NotEqual(t, http.StatusOK, healthCode(c), "still unhealthy while the senders count into the queue")
		require.NoError(t, srv.Start())
		t.Log("postgres started")
	})
	requireDelivered(t, rs)
	require.EqualValues(t, 9000, total(rs))
	waitForSum(t, d, "e2e-pg-down-at-start", "", total(rs), 2*convergeTimeout, settle)
	require.Eventually(t, func() bool { return healthCode(c) == http.StatusOK }, 30*time.Second, 200*time.Millisecond,
		"health_check reports the collector healthy once postgres answers")
}
