package e2e

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireEventsDelivered checks that no events sender failed, dropped events or still holds some.
func requireEventsDelivered(t *testing.T, rs []senderReport) {
	t.Helper()
	for i, r := range rs {
		require.Empty(t, r.Error, "sender %d", i)
		require.Zero(t, r.EventsDropped, "sender %d dropped events", i)
		require.Zero(t, r.EventsBacklog, "sender %d still holds events", i)
		require.EqualValues(t, r.Sent, r.EventsExported, "sender %d: events exported", i)
	}
}

// eventsSent adds up, per event name, what the senders emitted.
func eventsSent(rs []senderReport) map[string]int64 {
	m := map[string]int64{}
	for _, r := range rs {
		for k, v := range r.Events {
			m[k] += v
		}
	}
	return m
}

// connect opens a connection to d's server that is closed when the test ends.
func (d db) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// storedEvents returns, per event name, the rows of <schema>.events and their summed adjusted counts.
func storedEvents(t *testing.T, conn *pgx.Conn, schema string) (rows map[string]int64, adjusted map[string]float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := conn.Query(ctx, "SELECT name, count(*), sum(adjusted_count) FROM "+schema+".events GROUP BY name")
	require.NoError(t, err)
	defer r.Close()
	rows, adjusted = map[string]int64{}, map[string]float64{}
	for r.Next() {
		var name string
		var n int64
		var adj float64
		require.NoError(t, r.Scan(&name, &n, &adj))
		rows[name], adjusted[name] = n, adj
	}
	require.NoError(t, r.Err())
	return rows, adjusted
}

// waitForEvents waits (at most convergeTimeout) until <schema>.events holds want rows in total,
// and checks that the count stays there for settle.
func waitForEvents(t *testing.T, d db, conn *pgx.Conn, want int64) {
	t.Helper()
	start := time.Now()
	var got int64
	for {
		rows, _ := storedEvents(t, conn, d.schema)
		got = 0
		for _, n := range rows {
			got += n
		}
		if got == want {
			break
		}
		require.LessOrEqual(t, got, want, "more events stored than sent: some were stored twice")
		require.Less(t, time.Since(start), convergeTimeout, "after %s %s.events holds %d events, want %d", convergeTimeout, d.schema, got, want)
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(settle)
	rows, _ := storedEvents(t, conn, d.schema)
	var again int64
	for _, n := range rows {
		again += n
	}
	require.Equal(t, want, again, "the events table moved after it had converged")
}

// 8. Product events through track.Event with sampling off (the example config): every event is
// stored once in track.events, and the rollups count each name exactly as event.<name>.
func TestEventsExact(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	names := []string{"page_view", "click", "scroll", "signup_start"}
	var specs []senderSpec
	for i := range 3 {
		s := senderSpec{mode: "events", events: names, n: 3000, users: 400, seed: uint64(i + 1),
			duration: 3 * time.Second, endpoint: c.GRPC}
		if i == 1 {
			s.endpoint, s.protocol = c.HTTP, "http/protobuf"
		}
		specs = append(specs, s)
	}
	rs := runSenders(t, specs, nil)
	requireEventsDelivered(t, rs)
	sent := eventsSent(rs)
	require.EqualValues(t, 9000, total(rs))
	for _, name := range names {
		require.EqualValues(t, 2250, sent[name], name)
	}
	for _, name := range names {
		waitForSum(t, d, "event."+name, "", sent[name], convergeTimeout, 0)
	}
	conn := d.connect(t)
	waitForEvents(t, d, conn, total(rs))
	rows, adjusted := storedEvents(t, conn, d.schema)
	for _, name := range names {
		assert.Equal(t, sent[name], rows[name], "rows of %s in %s.events", name, d.schema)
		assert.InDelta(t, float64(sent[name]), adjusted[name], 0, "Σ adjusted_count of %s", name)
		got, err := d.sum(context.Background(), "event."+name, "")
		require.NoError(t, err)
		assert.Equal(t, sent[name], got, "rollup of event.%s after the settle", name)
	}
	// Three senders × 400 users, each user hashed to one id.
	var users int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(DISTINCT user_id) FROM "+d.schema+".events").Scan(&users))
	assert.Equal(t, 1200, users)
	t.Logf("E2E %s: sent=%d stored rows=%d per name %v, users=%d", t.Name(), total(rs), total(rs), rows, users)
}

// 9. Sampling on: the sampler keeps 10% of the scroll events, consistently by user, and every kept
// scroll carries adjusted_count 10; the rollup estimate of event.scroll is within 4 binomial
// standard deviations of the truth, while unsampled names stay exact. The decision is a keyed hash
// of the user id, so with the fixed hash key and seed the run is deterministic.
func TestEventsSampled(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema, override: `
processors:
  sampler:
    sampling:
      logs:
        by: attribute
        attribute: user.id
        rules:
          - {name: scroll, probability: 0.1}
`})
	c.start()
	// Ten scrolls for every page view, each event from its own user: the scroll decisions are
	// independent, so the number kept is binomial(20000, 0.1).
	names := append(slices.Repeat([]string{"scroll"}, 10), "page_view")
	const n, p = 22000, 0.1
	rs := runSenders(t, []senderSpec{{mode: "events", events: names, n: n, users: n, seed: 42,
		duration: 4 * time.Second, endpoint: c.GRPC}}, nil)
	requireEventsDelivered(t, rs)
	sent := eventsSent(rs)
	require.EqualValues(t, 20000, sent["scroll"])
	require.EqualValues(t, 2000, sent["page_view"])
	// The unsampled name is exact; once it is, every acknowledged request is stored (the scrolls
	// travel in the same requests), and the settle checks nothing moves after.
	waitForSum(t, d, "event.page_view", "", sent["page_view"], convergeTimeout, settle)

	conn := d.connect(t)
	rows, adjusted := storedEvents(t, conn, d.schema)
	estimate, err := d.sum(context.Background(), "event.scroll", "")
	require.NoError(t, err)
	var notTen int
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT count(*) FROM "+d.schema+".events WHERE name = 'scroll' AND adjusted_count <> 10").Scan(&notTen))
	assert.Zero(t, notTen, "kept scrolls whose adjusted_count is not 10")
	assert.InDelta(t, 10*float64(rows["scroll"]), adjusted["scroll"], 1e-6, "Σ adjusted_count of the kept scrolls")
	assert.Equal(t, int64(adjusted["scroll"]), estimate, "rollup event.scroll vs Σ adjusted_count in events")
	assert.Equal(t, sent["page_view"], rows["page_view"], "page views are all kept")
	assert.InDelta(t, float64(sent["page_view"]), adjusted["page_view"], 0)

	truth := float64(sent["scroll"])
	sigma := math.Sqrt(truth*p*(1-p)) / p // standard deviation of the estimate Σ 1/p
	tolerance := 4 * sigma
	t.Logf("E2E %s: scroll sent=%d kept=%d estimate=%d (error %+.0f, %+.2f σ), tolerance ±%.0f (4σ, σ=√(Np(1−p))/p=%.0f); page_view sent=%d stored=%d",
		t.Name(), sent["scroll"], rows["scroll"], estimate, float64(estimate)-truth, (float64(estimate)-truth)/sigma,
		tolerance, sigma, sent["page_view"], rows["page_view"])
	assert.InDelta(t, truth, float64(estimate), tolerance, "rollup estimate of event.scroll")
	assert.NotZero(t, rows["scroll"], "no scroll kept")
}

// 10. No PII reaches Postgres through events: an email and a Luhn-valid card number in
// attributes, in an error's message (track.Error, which also puts it in the body) and inside a
// panic's stack trace, and a city in the location. Every table and view of the schema, read row
// by row as text, holds none of them, nor a raw user id; what is kept (country, region, hashed
// users, redaction marks) is there, and the counts are exact.
func TestEventsNoPII(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	rs := runSenders(t, []senderSpec{
		{mode: "events", events: []string{"page_view", "click"}, n: 2000, users: 50, seed: 9, pii: true,
			duration: 2 * time.Second, endpoint: c.GRPC},
		{mode: "events", events: []string{"signup_start", "scroll"}, n: 2000, users: 50, seed: 10, pii: true,
			duration: 2 * time.Second, endpoint: c.HTTP, protocol: "http/protobuf"},
	}, nil)
	requireEventsDelivered(t, rs)
	sent := eventsSent(rs)
	require.EqualValues(t, 2000, sent["error"], "half the events are errors")
	waitForSum(t, d, "event.error", "", sent["error"], convergeTimeout, 0)
	conn := d.connect(t)
	waitForEvents(t, d, conn, total(rs))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Every table (the events partitions included) and view of the schema.
	r, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", d.schema)
	require.NoError(t, err)
	relations, err := pgx.CollectRows(r, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, relations, "events")
	require.Contains(t, relations, "event_errors")
	secrets := []string{"bob.tester", "example.org", "4111 1111", "4111111111111111", "Zwickau", "e2e-user-"}
	scanned := 0
	for _, rel := range relations {
		var rows int
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.%s", d.schema, pgx.Identifier{rel}.Sanitize())).Scan(&rows))
		scanned += rows
		for _, secret := range secrets {
			var n int
			require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.%s x WHERE strpos(x::text, $1) > 0",
				d.schema, pgx.Identifier{rel}.Sanitize()), secret).Scan(&n))
			assert.Zero(t, n, "%q found in %d rows of %s.%s", secret, n, d.schema, rel)
		}
	}
	// The same scan finds what the sampler left in place of the secrets: it would see them.
	var marked int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+d.schema+".events x WHERE strpos(x::text, '[REDACTED:email]') > 0").Scan(&marked))
	assert.EqualValues(t, total(rs), marked, "events whose text shows the redacted email")
	// And what the analysts' functions return.
	for _, q := range []string{
		"SELECT x::text FROM " + d.schema + ".series('event.error', now() - interval '1 hour', now() + interval '1 minute', interval '1 minute') x",
		"SELECT x::text FROM " + d.schema + ".funnel(ARRAY['page_view','click'], now() - interval '1 hour', now() + interval '1 minute', interval '1 hour') x",
	} {
		r, err := conn.Query(ctx, q)
		require.NoError(t, err)
		out, err := pgx.CollectRows(r, pgx.RowTo[string])
		require.NoError(t, err)
		for _, line := range out {
			for _, secret := range secrets {
				assert.NotContains(t, line, secret, q)
			}
		}
	}

	// What must be kept is kept: country and region, hashed users, marked redactions.
	var bad, hashed, users int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FILTER (WHERE country IS DISTINCT FROM 'DE' OR region IS DISTINCT FROM 'SN'), "+
		"count(*) FILTER (WHERE user_id ~ '^[0-9a-f]{32}$'), count(DISTINCT user_id) FROM "+d.schema+".events").Scan(&bad, &hashed, &users))
	assert.Zero(t, bad, "events without their country and region")
	assert.EqualValues(t, total(rs), hashed, "events whose user_id is a 32-hex-digit hash")
	assert.Equal(t, 100, users, "two senders × 50 users")
	var msg, stack, body, attrs string
	require.NoError(t, conn.QueryRow(ctx, "SELECT attributes->>'exception.message', attributes->>'exception.stacktrace', coalesce(body, ''), attributes::text FROM "+
		d.schema+".events WHERE name = 'error' AND attributes->>'exception.type' <> 'panic' LIMIT 1").Scan(&msg, &stack, &body, &attrs))
	assert.Contains(t, msg, "REDACTED")
	assert.Contains(t, body, "REDACTED")
	assert.Contains(t, stack, "e2e/internal/sender", "the stack trace of track.Error is kept")
	assert.Contains(t, attrs, "REDACTED")
	var panicStack string
	require.NoError(t, conn.QueryRow(ctx, "SELECT attributes->>'exception.stacktrace' FROM "+
		d.schema+".events WHERE name = 'error' AND attributes->>'exception.type' = 'panic' LIMIT 1").Scan(&panicStack))
	assert.Regexp(t, regexp.MustCompile(`^panic: charging \[REDACTED:card\] for \[REDACTED:email\]`), panicStack)
	assert.Contains(t, panicStack, "goroutine 1 [running]", "the rest of the stack trace is kept")
	t.Logf("E2E %s: sent=%d (errors %d) stored=%d; scanned %d rows in %d tables and views for %d secrets: none found",
		t.Name(), total(rs), sent["error"], hashed, scanned, len(relations), len(secrets))
	t.Logf("a stored error: message %q, body %q", msg, body)
}
