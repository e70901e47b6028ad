package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/internal/pgtest"
)

const (
	// convergeTimeout bounds the wait for the exact sum after the senders end.
	convergeTimeout = 60 * time.Second
	// settle is how long the sum must stay exact once reached.
	settle = 3 * time.Second
)

// sharedDB gives a scenario its own schema on the shared test server.
func sharedDB(t testing.TB) db {
	sc := pgtest.NewSchema(t)
	return db{dsn: sc.ServerDSN, schema: sc.Name}
}

// 1. Several sender processes using track, several thousand increments each, over both protocols.
func TestSeveralSenders(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	var specs []senderSpec
	for i := range 4 {
		s := senderSpec{metric: "e2e-several", n: 5000, duration: 4 * time.Second, endpoint: c.GRPC,
			attrs: []string{fmt.Sprintf("shard=%d", i%2)}}
		if i%2 == 1 {
			s.endpoint, s.protocol = c.HTTP, "http/protobuf"
		}
		specs = append(specs, s)
	}
	rs := runSenders(t, specs, nil)
	requireDelivered(t, rs)
	require.EqualValues(t, 20000, total(rs))
	waitForSum(t, d, "e2e-several", "", total(rs), convergeTimeout, settle)
	// Attributes survive: each shard holds exactly what its two senders counted.
	for shard := range 2 {
		got, err := d.sum(context.Background(), "e2e-several", fmt.Sprintf(`{"shard":"%d"}`, shard))
		require.NoError(t, err)
		assert.EqualValues(t, 10000, got, "shard %d", shard)
	}
	// trackchart draws the same total from track.series.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chartBin, "-dsn", d.dsn, "-schema", d.schema, "-metric", "e2e-several",
		"-since", "5m", "-step", "1m", "-utc").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("trackchart:\n%s", out)
	assert.Contains(t, string(out), "· total 20000\n")
	assert.Contains(t, string(out), "^ e2e-several per 1m · peak ")
}

// 2. SIGKILL the collector in the middle and restart it on the same data directory: the
// persistent queue and track's backlog bring back every count, and none counts twice. The kill
// hits data in flight by construction: the test holds a lock on the tables pgrollup writes, so
// its one consumer blocks mid-export, and kills the collector only once its sending queue holds
// requests.
func TestCollectorKilled(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema,
		override: "exporters:\n  pgrollup:\n    sending_queue:\n      num_consumers: 1\n"})
	c.start()
	var specs []senderSpec
	for range 3 {
		specs = append(specs, senderSpec{metric: "e2e-killed", n: 6000, duration: 10 * time.Second, endpoint: c.GRPC})
	}
	var queued float64
	rs := runSenders(t, specs, func() {
		time.Sleep(2 * time.Second)
		queued = killWithQueuedData(t, c, d)
		time.Sleep(2 * time.Second)
		c.start()
		t.Logf("collector %s restarted", c.name)
	})
	require.Positive(t, queued, "the kill must hit requests in the sending queue")
	requireDelivered(t, rs)
	var failures uint64
	for _, r := range rs {
		failures += r.Failures
	}
	t.Logf("the kill hit %.0f queued requests; export failures seen by the senders: %d", queued, failures)
	waitForSum(t, d, "e2e-killed", "", total(rs), convergeTimeout, settle)
}

// killWithQueuedData blocks pgrollup's writes (an ACCESS EXCLUSIVE lock on its rollup and
// request-key tables), waits until c's sending queue holds requests, SIGKILLs c, releases the lock
// and returns the queue size it saw just before the kill. It fails the test if the queue stays
// empty for 30 s.
func killWithQueuedData(t *testing.T, c *collector, d db) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+d.schema+".item_keys, "+d.schema+".rollup_minute IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	var queued float64
	require.Eventually(t, func() bool {
		queued = scrapeTelemetry(t, c).queueSize(t)
		return queued > 0
	}, 30*time.Second, 50*time.Millisecond, "pgrollup's sending queue stayed empty while its writes were blocked")
	c.kill()
	t.Logf("collector %s SIGKILLed with %.0f requests queued", c.name, queued)
	require.NoError(t, tx.Rollback(ctx))
	return queued
}

// 3. Restart Postgres in the middle: pgrollup retries from the persistent queue, and a commit
// whose acknowledgement was lost is not counted twice.
func TestPostgresRestarted(t *testing.T) {
	srv, err := pgtest.NewServer()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	sc := srv.NewSchema(t)
	d := db{dsn: sc.ServerDSN, schema: sc.Name}
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	var specs []senderSpec
	for range 3 {
		specs = append(specs, senderSpec{metric: "e2e-pg-restart", n: 6000, duration: 10 * time.Second, endpoint: c.GRPC})
	}
	rs := runSenders(t, specs, func() {
		time.Sleep(3 * time.Second)
		require.NoError(t, srv.Kill())
		t.Log("postgres killed (immediate shutdown)")
		time.Sleep(3 * time.Second)
		require.NoError(t, srv.Start())
		t.Log("postgres started again")
	})
	requireDelivered(t, rs)
	waitForSum(t, d, "e2e-pg-restart", "", total(rs), 2*convergeTimeout, settle)
}

// 4. Senders on the plain OTel SDK with its default CUMULATIVE temporality, counted by pgrollup
// from its stream state (no cumulative_to_delta; cumulative_test.go has the hard cases).
func TestCumulativeSDKSenders(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	var specs []senderSpec
	for i := range 2 {
		specs = append(specs, senderSpec{mode: "sdk", metric: "e2e-cumulative", n: 4000, duration: 5 * time.Second,
			endpoint: c.GRPC, attrs: []string{fmt.Sprintf("sender=%d", i)}})
	}
	rs := runSenders(t, specs, nil)
	requireNoSenderError(t, rs)
	waitForSum(t, d, "e2e-cumulative", "", total(rs), convergeTimeout, settle)
}

// 5. Two collectors at once, writing the same series into the same tables, with the senders split
// between them: the upserts add, so no routing is needed for exact totals.
func TestTwoCollectors(t *testing.T) {
	d := sharedDB(t)
	c1, c2 := startTwo(t, d)
	var specs []senderSpec
	for i := range 4 {
		ep := c1.GRPC
		if i%2 == 1 {
			ep = c2.GRPC
		}
		specs = append(specs, senderSpec{metric: "e2e-two", n: 5000, duration: 5 * time.Second, endpoint: ep,
			attrs: []string{"route=same"}})
	}
	rs := runSenders(t, specs, nil)
	requireDelivered(t, rs)
	waitForSum(t, d, "e2e-two", "", total(rs), convergeTimeout, settle)
}

// 5b. The scaled-out layout of examples/gateway.yaml: senders → one agent whose load_balancing
// exporter spreads whole requests over two gateway collectors → one Postgres. A gateway is
// SIGKILLed and restarted in the middle. The cumulative sender's streams move between gateways
// when the ring changes; their state in Postgres keeps them exact.
func TestAgentAndGateways(t *testing.T) {
	d := sharedDB(t)
	g1 := newCollector(t, "gateway1", collectorOptions{dsn: d.dsn, schema: d.schema})
	g2 := newCollector(t, "gateway2", collectorOptions{dsn: d.dsn, schema: d.schema})
	agent := newCollector(t, "agent", collectorOptions{agentOf: []*collector{g1, g2}})
	g1.start()
	g2.start()
	agent.start()
	var specs []senderSpec
	for i := range 4 {
		specs = append(specs, senderSpec{metric: "e2e-gateway", n: 5000, duration: 8 * time.Second, endpoint: agent.GRPC,
			attrs: []string{fmt.Sprintf("sender=%d", i)}})
	}
	specs = append(specs, senderSpec{mode: "sdk", metric: "e2e-gateway", n: 3000, duration: 8 * time.Second,
		endpoint: agent.GRPC, attrs: []string{"sender=sdk"}})
	rs := runSenders(t, specs, func() {
		time.Sleep(3 * time.Second)
		g2.kill()
		t.Log("gateway2 SIGKILLed")
		time.Sleep(2 * time.Second)
		g2.start()
		t.Log("gateway2 restarted")
	})
	requireDelivered(t, rs[:4])
	require.Empty(t, rs[4].Error)
	waitForSum(t, d, "e2e-gateway", "", total(rs), convergeTimeout, settle)
}

// 6. Sensitive values in attributes (an email, a Luhn-valid card number, a secret key) never reach
// Postgres, while the counts and the harmless attributes do.
func TestSensitiveValuesNeverStored(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	attrs := []string{
		"customer=alice.liddell@example.com",
		"note=paid with 4111 1111 1111 1111 today",
		"card_number=5500005555555559",
		"password=hunter2-hunter2",
		"order=ORD-4111111111111112", // Luhn-invalid: an order id, kept
		"result=fraudulent",
	}
	rs := runSenders(t, []senderSpec{
		{metric: "e2e-pii", n: 3000, duration: 3 * time.Second, endpoint: c.GRPC, attrs: attrs},
		{metric: "e2e-pii", n: 3000, duration: 3 * time.Second, endpoint: c.HTTP, protocol: "http/protobuf", attrs: attrs},
	}, nil)
	requireDelivered(t, rs)
	waitForSum(t, d, "e2e-pii", "", total(rs), convergeTimeout, settle)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	// Every table of the schema, as text, row by row.
	tables, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", d.schema)
	require.NoError(t, err)
	names, err := pgx.CollectRows(tables, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, secret := range []string{"alice.liddell", "example.com", "4111 1111", "5500005555555559", "hunter2"} {
		for _, table := range names {
			var n int
			require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.%s x WHERE strpos(x::text, $1) > 0", d.schema, pgx.Identifier{table}.Sanitize()),
				secret).Scan(&n))
			assert.Zero(t, n, "%q found in %s.%s", secret, d.schema, table)
		}
	}
	// The harmless attributes are kept, the scrubbed values marked.
	var attrsJSON string
	require.NoError(t, conn.QueryRow(ctx, "SELECT attributes::text FROM "+d.schema+".minutely WHERE metric = 'e2e-pii' LIMIT 1").Scan(&attrsJSON))
	t.Logf("stored attributes: %s", attrsJSON)
	assert.Contains(t, attrsJSON, `"result": "fraudulent"`)
	assert.Contains(t, attrsJSON, "ORD-4111111111111112")
	assert.Contains(t, attrsJSON, "REDACTED")
}

// 7. With bearertokenauth on, a sender without the token is refused and nothing from it is stored,
// while a sender with the token lands exactly.
func TestBearerTokenRefusesSenderWithoutToken(t *testing.T) {
	d := sharedDB(t)
	const token = "e2e-bearer-token-7f3a9c"
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema, override: `
extensions:
  bearertokenauth:
    scheme: Bearer
    token: ` + token + `
receivers:
  otlp:
    protocols:
      grpc:
        auth:
          authenticator: bearertokenauth
      http:
        auth:
          authenticator: bearertokenauth
service:
  extensions: [health_check, pprof, file_storage, bearertokenauth]
`})
	c.start()
	rs := runSenders(t, []senderSpec{
		{metric: "e2e-auth", n: 3000, duration: 3 * time.Second, endpoint: c.GRPC, attrs: []string{"sender=with-token"},
			env: []string{"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer " + token}},
		{metric: "e2e-auth", n: 2000, duration: 3 * time.Second, endpoint: c.HTTP, protocol: "http/protobuf",
			attrs: []string{"sender=with-token"}, env: []string{"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer " + token}},
		{metric: "e2e-auth", n: 2500, duration: 3 * time.Second, endpoint: c.GRPC, attrs: []string{"sender=no-token"}, flush: 3 * time.Second},
		{metric: "e2e-auth", n: 2500, duration: 3 * time.Second, endpoint: c.HTTP, protocol: "http/protobuf",
			attrs: []string{"sender=no-token"}, env: []string{"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer wrong-token"}, flush: 3 * time.Second},
	}, nil)
	requireDelivered(t, rs[:2])
	for i, r := range rs[2:] {
		assert.Zero(t, r.Exported, "refused sender %d had points accepted", i)
		assert.NotZero(t, r.Failures, "refused sender %d saw no failed export", i)
	}
	waitForSum(t, d, "e2e-auth", "", rs[0].Sent+rs[1].Sent, convergeTimeout, settle)
	refused, err := d.sum(context.Background(), "e2e-auth", `{"sender":"no-token"}`)
	require.NoError(t, err)
	assert.Zero(t, refused, "counts of refused senders were stored")
	t.Logf("E2E %s: refused senders sent %d, stored %d", t.Name(), rs[2].Sent+rs[3].Sent, refused)
}
