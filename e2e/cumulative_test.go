package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The scenarios of cumulative senders: the plain OTel Go SDK at its default (cumulative)
// temporality, counted by pgrollup from its per-stream state in Postgres, with no
// cumulative_to_delta in the pipeline (examples/collector.yaml).

// otlpProxy is an OTLP/HTTP hop between one sender and the collectors. With several targets it
// sends each export to the next collector in turn (no affinity at all). With chaos it damages the
// order and the uniqueness of one sender's exports on their way to one collector: every other
// export is held back and sent after the next one (or after 2 s), every export after the first is
// sent again merged with the one before it (a re-batched duplicate: new bytes, old points), and
// every third export is sent twice as is. An export the proxy held back is acknowledged to the
// sender at once and then sent until the collector takes it.
type otlpProxy struct {
	t       *testing.T
	targets []string // host:port of the collectors' OTLP/HTTP receivers
	chaos   bool
	srv     *httptest.Server
	client  *http.Client
	bg      sync.WaitGroup

	mu       sync.Mutex
	n        int
	held     []byte
	heldStop func() bool
	prev     []byte
}

func newProxy(t *testing.T, chaos bool, targets ...string) *otlpProxy {
	p := &otlpProxy{t: t, targets: targets, chaos: chaos, client: &http.Client{Timeout: 10 * time.Second}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.handle))
	t.Cleanup(func() {
		p.close()
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	return p
}

// endpoint is the proxy's host:port, for a sender's OTEL_EXPORTER_OTLP_ENDPOINT.
func (p *otlpProxy) endpoint() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *otlpProxy) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.URL.Path != "/v1/metrics" || r.Header.Get("Content-Encoding") != "" {
		http.Error(w, "the proxy takes uncompressed OTLP/HTTP metrics", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	i := p.n
	p.n++
	if !p.chaos {
		p.mu.Unlock()
		w.WriteHeader(p.forward(p.targets[i%len(p.targets)], body))
		return
	}
	if i%2 == 0 && p.held == nil {
		p.held = body
		t := time.AfterFunc(2*time.Second, p.releaseHeld)
		p.heldStop = t.Stop
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	held := p.takeHeld()
	prev := p.prev
	p.prev = body
	p.mu.Unlock()
	status := p.forward(p.targets[0], body)
	if held != nil {
		p.later(held)
	}
	if prev != nil {
		// Two serialized requests concatenated are one request holding the resources of both.
		p.later(append(append([]byte{}, prev...), body...))
	}
	if i%3 == 0 {
		p.later(body)
	}
	w.WriteHeader(status)
}

// takeHeld returns the held export, if any, and stops its timer; p.mu is held.
func (p *otlpProxy) takeHeld() []byte {
	held := p.held
	if held != nil {
		p.heldStop()
		p.held = nil
	}
	return held
}

// releaseHeld sends the held export, if any, in the background. It counts the delivery in p.bg under
// p.mu, so that close (which takes p.mu before it waits) never waits while a timer adds to p.bg.
func (p *otlpProxy) releaseHeld() {
	p.mu.Lock()
	held := p.takeHeld()
	if held != nil {
		p.bg.Add(1)
	}
	p.mu.Unlock()
	if held != nil {
		go p.deliver(held)
	}
}

// later sends body in the background until the collector takes it.
func (p *otlpProxy) later(body []byte) {
	p.bg.Add(1)
	go p.deliver(body)
}

// deliver sends body until the collector takes it, then marks it done in p.bg.
func (p *otlpProxy) deliver(body []byte) {
	defer p.bg.Done()
	deadline := time.Now().Add(2 * time.Minute)
	for p.forward(p.targets[0], body) != http.StatusOK {
		if time.Now().After(deadline) {
			p.t.Errorf("the proxy could not deliver an export it had acknowledged")
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// forward sends one export and returns the collector's status (503 when it cannot be reached).
func (p *otlpProxy) forward(target string, body []byte) int {
	resp, err := p.client.Post("http://"+target+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		return http.StatusServiceUnavailable
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// close stops taking exports (waiting for the handlers in flight, which may still add to p.bg), sends
// what is still held back and waits until everything acknowledged was delivered.
func (p *otlpProxy) close() {
	p.srv.Close()
	p.releaseHeld()
	p.bg.Wait()
}

// collectorMetric returns the sum of the collector's own Prometheus samples of the metric name
// whose labels contain every one of labels; it fails the test when there is none.
func collectorMetric(t *testing.T, c *collector, name string, labels ...string) float64 {
	t.Helper()
	return scrapeTelemetry(t, c).sum(t, name, labels...)
}

// Cumulative senders while the collector is SIGKILLed and restarted: the stream state is in
// Postgres, so the first point after the restart is not a new baseline, and replays add 0.
func TestCumulativeCollectorKilled(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	var specs []senderSpec
	for i := range 3 {
		specs = append(specs, senderSpec{mode: "sdk", metric: "e2e-cum-killed", n: 6000, duration: 10 * time.Second,
			interval: 500 * time.Millisecond, endpoint: c.GRPC, attrs: []string{fmt.Sprintf("sender=%d", i)}})
	}
	rs := runSenders(t, specs, killAndRestart(t, c, 4*time.Second, 2*time.Second))
	requireNoSenderError(t, rs)
	waitForSum(t, d, "e2e-cum-killed", "", total(rs), convergeTimeout, settle)
}

// Two collectors, each sender's exports alternating between them with no affinity: both update
// the same stream rows, serialised per stream by their row locks.
func TestCumulativeAlternatingCollectors(t *testing.T) {
	d := sharedDB(t)
	c1, c2 := startTwo(t, d)
	var specs []senderSpec
	for i := range 4 {
		p := newProxy(t, false, c1.HTTP, c2.HTTP)
		specs = append(specs, senderSpec{mode: "sdk", metric: "e2e-cum-two", n: 5000, duration: 6 * time.Second,
			interval: 300 * time.Millisecond, endpoint: p.endpoint(), protocol: "http/protobuf",
			attrs: []string{fmt.Sprintf("sender=%d", i%2)}})
	}
	rs := runSenders(t, specs, nil)
	requireNoSenderError(t, rs)
	waitForSum(t, d, "e2e-cum-two", "", total(rs), convergeTimeout, settle)
	for _, c := range []*collector{c1, c2} {
		assert.Positive(t, collectorMetric(t, c, "otelcol_exporter_pgrollup_cumulative_points", `outcome="delta"`),
			"collector %s counted deltas", c.name)
	}
}

// Senders that restart: a service restarted twice under the same service.instance.id (each run a
// new start time: a reset that counts from 0), short-lived jobs that export once at exit, under one
// instance id and each under its own.
func TestCumulativeRestartingSenders(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	same := []string{"OTEL_RESOURCE_ATTRIBUTES=service.instance.id=restarting"}
	var want int64
	// One run after the other, as restarts are; each run's counts land before the next starts
	// (a point of one run arriving after the next run's would count 0: see the README's limits).
	run := func(spec senderSpec) {
		rs := runSenders(t, []senderSpec{spec}, nil)
		requireNoSenderError(t, rs)
		want += total(rs)
		waitForSum(t, d, "e2e-cum-restart", "", want, convergeTimeout, 0)
	}
	for range 3 {
		run(senderSpec{mode: "sdk", metric: "e2e-cum-restart", n: 1500, duration: 2 * time.Second,
			interval: 500 * time.Millisecond, endpoint: c.GRPC, env: same})
	}
	// Short-lived: done before their first interval, so the export at exit is the only one.
	for i := range 4 {
		run(senderSpec{mode: "sdk", metric: "e2e-cum-restart", n: int64(100 + i), interval: time.Minute,
			endpoint: c.GRPC, env: same})
	}
	var specs []senderSpec
	for i := range 4 {
		specs = append(specs, senderSpec{mode: "sdk", metric: "e2e-cum-restart", n: int64(200 + i), interval: time.Minute,
			endpoint: c.GRPC, env: []string{fmt.Sprintf("OTEL_RESOURCE_ATTRIBUTES=service.instance.id=job-%d", i)}})
	}
	rs := runSenders(t, specs, nil)
	requireNoSenderError(t, rs)
	want += total(rs)
	waitForSum(t, d, "e2e-cum-restart", "", want, convergeTimeout, settle)
	assert.Equal(t, 6.0, collectorMetric(t, c, "otelcol_exporter_pgrollup_cumulative_points", `outcome="reset"`),
		"each of the 6 restarts under the same instance id is one reset")
}

// Exports duplicated (as is, and re-batched with the one before) and out of order.
func TestCumulativeDuplicatedAndReordered(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	var specs []senderSpec
	var proxies []*otlpProxy
	for i := range 3 {
		p := newProxy(t, true, c.HTTP)
		proxies = append(proxies, p)
		specs = append(specs, senderSpec{mode: "sdk", metric: "e2e-cum-chaos", n: 4000, duration: 5 * time.Second,
			interval: 250 * time.Millisecond, endpoint: p.endpoint(), protocol: "http/protobuf",
			attrs: []string{fmt.Sprintf("sender=%d", i)}})
	}
	rs := runSenders(t, specs, nil)
	requireNoSenderError(t, rs)
	for _, p := range proxies {
		p.close()
	}
	waitForSum(t, d, "e2e-cum-chaos", "", total(rs), convergeTimeout, settle)
	assert.Positive(t, collectorMetric(t, c, "otelcol_exporter_pgrollup_cumulative_points", `outcome="duplicate"`),
		"late and re-batched points counted 0")
	assert.Positive(t, collectorMetric(t, c, "otelcol_exporter_pgrollup_items_duplicate"),
		"byte-identical exports were skipped by their key")
}

// A stream first seen long after it started (a long-running process, a collector newly put in
// front of it) is a baseline: what it counted before its first export is not counted, everything
// after is. A stream that started recently counts from its first value.
func TestCumulativeFirstSeenLate(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()
	rs := runSenders(t, []senderSpec{
		{mode: "sdk", metric: "e2e-cum-late", n: 3000, duration: 3 * time.Second, interval: 500 * time.Millisecond,
			endpoint: c.GRPC, attrs: []string{"age=old"}, baseline: 700, startAge: 2 * time.Hour},
		{mode: "sdk", metric: "e2e-cum-late", n: 3000, duration: 3 * time.Second, interval: 500 * time.Millisecond,
			endpoint: c.GRPC, attrs: []string{"age=new"}, baseline: 700},
	}, nil)
	requireNoSenderError(t, rs)
	require.EqualValues(t, 700, rs[0].Baseline)
	waitForSum(t, d, "e2e-cum-late", `{"age":"old"}`, rs[0].Sent-rs[0].Baseline, convergeTimeout, settle)
	waitForSum(t, d, "e2e-cum-late", `{"age":"new"}`, rs[1].Sent, convergeTimeout, 0)
	assert.Equal(t, 1.0, collectorMetric(t, c, "otelcol_exporter_pgrollup_cumulative_points", `outcome="baseline"`))
}
