package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// The hostile-input scenario: while healthy track senders count, a misbehaving client sends, over
// OTLP/HTTP, one request per hostile input in the table below. Each request carries one bad point
// (or event) next to a good one. The test proves that
//   - the healthy senders' totals are exact and arrive as fast as usual;
//   - the good point beside each bad one is stored exactly once per request;
//   - each bad input is repaired (stored once per request, in a storable form) or refused (never
//     stored), and either way counted in the collector's own telemetry;
//   - nothing is retried forever: the persistent queues drain, also across a collector restart.

const (
	hostileGood      = "e2e-hostile-good"
	hostileBad       = "e2e-hostile-bad"
	hostileService   = "e2e-hostile"
	hostileSends     = 3 // each hostile request is sent this many times (each with new timestamps)
	hostileCardValue = 4111111111111111
)

// hostileCase is one kind of bad input. Exactly one of metric or event is set: it adds the bad
// point (or log record) to a request that already holds the good one.
type hostileCase struct {
	name   string
	metric func(md pmetric.Metrics, at pcommon.Timestamp)
	event  func(ld plog.Logs, at pcommon.Timestamp)
	// json, when set, is the raw OTLP/JSON body of the request instead (for inputs that pdata
	// cannot build, such as duplicate keys); %[1]s is the case name and %[2]d the time in ns.
	json string
	// refusedOnly marks inputs that must never be stored in any form.
	refusedOnly bool
}

// badSum appends a delta Sum point of value 1 named name to a new resource of md and returns it.
func badSum(md pmetric.Metrics, at pcommon.Timestamp, name, caseName string) (pcommon.Map, pmetric.NumberDataPoint) {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", hostileService)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	s.SetIsMonotonic(true)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(at - pcommon.Timestamp(time.Second))
	dp.SetTimestamp(at)
	dp.SetIntValue(1)
	dp.Attributes().PutStr("case", caseName)
	return rm.Resource().Attributes(), dp
}

// badEvent appends a log record named name with the case attribute to a new resource of ld.
func badEvent(ld plog.Logs, at pcommon.Timestamp, name, caseName string) (pcommon.Map, plog.LogRecord) {
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", hostileService)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(name)
	lr.SetTimestamp(at)
	lr.SetObservedTimestamp(at)
	lr.Attributes().PutStr("case", caseName)
	return rl.Resource().Attributes(), lr
}

func nested(depth int, leaf string) func(pcommon.Map) {
	return func(m pcommon.Map) {
		for range depth {
			m = m.PutEmptyMap("n")
		}
		m.PutStr("leaf", leaf)
	}
}

func hostileCases() []hostileCase {
	attrCase := func(name string, f func(a pcommon.Map)) hostileCase {
		return hostileCase{name: name, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			_, dp := badSum(md, at, hostileBad, name)
			f(dp.Attributes())
		}}
	}
	eventCase := func(name string, f func(res pcommon.Map, lr plog.LogRecord)) hostileCase {
		return hostileCase{name: name, event: func(ld plog.Logs, at pcommon.Timestamp) {
			res, lr := badEvent(ld, at, hostileBad, name)
			f(res, lr)
		}}
	}
	return []hostileCase{
		attrCase("nul-value", func(a pcommon.Map) { a.PutStr("plan", "a\x00b") }),
		attrCase("nul-key", func(a pcommon.Map) { a.PutStr("k\x00ey", "x") }),
		attrCase("utf8-value", func(a pcommon.Map) { a.PutStr("plan", "pro\xff\xfe") }),
		attrCase("utf8-key", func(a pcommon.Map) { a.PutStr("pl\xc3an", "x") }),
		attrCase("nul-in-slice", func(a pcommon.Map) {
			s := a.PutEmptySlice("tags")
			s.AppendEmpty().SetStr("ok")
			s.AppendEmpty().SetStr("b\x00d\xff")
		}),
		attrCase("nul-in-map", func(a pcommon.Map) {
			m := a.PutEmptyMap("ctx")
			m.PutStr("in\x00ner", "v\x00\xc3")
		}),
		attrCase("bytes-card", func(a pcommon.Map) {
			a.PutEmptyBytes("raw").FromRaw([]byte("\x00\xff " + strconv.Itoa(hostileCardValue)))
		}),
		attrCase("huge-value", func(a pcommon.Map) { a.PutStr("plan", strings.Repeat("x", 1<<20)) }),
		attrCase("huge-key", func(a pcommon.Map) { a.PutStr(strings.Repeat("k", 10_000), "x") }),
		attrCase("deep-map", func(a pcommon.Map) { nested(300, "deep")(a.PutEmptyMap("d")) }),
		attrCase("many-attributes", func(a pcommon.Map) {
			for i := range 5000 {
				a.PutStr("k"+strconv.Itoa(i), "v")
			}
		}),
		attrCase("int-card", func(a pcommon.Map) { a.PutInt("payment", hostileCardValue) }),
		attrCase("card-in-slice", func(a pcommon.Map) { a.PutEmptySlice("cards").AppendEmpty().SetInt(hostileCardValue) }),
		{name: "nul-metric-name", metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			badSum(md, at, "e2e-hostile\x00-bad", "nul-metric-name")
		}},
		{name: "utf8-metric-name", metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			badSum(md, at, "e2e-hostile-\xff", "utf8-metric-name")
		}},
		{name: "invalid-metric-name", refusedOnly: true, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			badSum(md, at, "no spaces allowed!", "invalid-metric-name")
		}},
		{name: "empty-metric-name", refusedOnly: true, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			badSum(md, at, "", "empty-metric-name")
		}},
		{name: "nul-service", metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			res, _ := badSum(md, at, hostileBad, "nul-service")
			res.PutStr("service.name", "svc\x00\xff")
		}},
		// The source (service.name, service.instance.id) pgrollup records: repaired and cut like every string.
		{name: "nul-instance", metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			res, _ := badSum(md, at, hostileBad, "nul-instance")
			res.PutStr("service.instance.id", "i\x00\xff")
		}},
		{name: "huge-instance", metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			res, _ := badSum(md, at, hostileBad, "huge-instance")
			res.PutStr("service.instance.id", strings.Repeat("i", 1<<20))
		}},
		{name: "nul-resource-attr", metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			res, _ := badSum(md, at, hostileBad, "nul-resource-attr")
			res.PutStr("deployment\x00", "x\x00")
		}},
		{name: "huge-value-number", metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			_, dp := badSum(md, at, hostileBad, "huge-value-number")
			dp.SetDoubleValue(math.MaxFloat64)
		}},
		{name: "nan-value", refusedOnly: true, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			_, dp := badSum(md, at, hostileBad, "nan-value")
			dp.SetDoubleValue(math.NaN())
		}},
		{name: "inf-value", refusedOnly: true, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			_, dp := badSum(md, at, hostileBad, "inf-value")
			dp.SetDoubleValue(math.Inf(1))
		}},
		{name: "zero-time", refusedOnly: true, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			_, dp := badSum(md, at, hostileBad, "zero-time")
			dp.SetStartTimestamp(0)
			dp.SetTimestamp(0)
		}},
		{name: "future-time", refusedOnly: true, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			_, dp := badSum(md, at, hostileBad, "future-time")
			dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)))
		}},
		{name: "max-time", refusedOnly: true, metric: func(md pmetric.Metrics, at pcommon.Timestamp) {
			_, dp := badSum(md, at, hostileBad, "max-time")
			dp.SetTimestamp(pcommon.Timestamp(math.MaxUint64))
		}},
		{name: "duplicate-keys", json: `{"resourceMetrics":[
 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"` + hostileService + `"}}]},
  "scopeMetrics":[{"metrics":[
   {"name":"` + hostileGood + `","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
     {"startTimeUnixNano":"%[2]d","timeUnixNano":"%[2]d","asInt":"1","attributes":[{"key":"case","value":{"stringValue":"%[1]s"}}]}]}},
   {"name":"` + hostileBad + `","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
     {"startTimeUnixNano":"%[2]d","timeUnixNano":"%[2]d","asInt":"1","attributes":[
       {"key":"case","value":{"stringValue":"%[1]s"}},
       {"key":"plan","value":{"stringValue":"a"}},{"key":"plan","value":{"stringValue":"b"}},
       {"key":"plan","value":{"stringValue":"a\u0000c"}}]}]}}]}]}]}`},

		eventCase("event-nul-body", func(_ pcommon.Map, lr plog.LogRecord) { lr.Body().SetStr("bo\x00dy\xff") }),
		eventCase("event-map-body", func(_ pcommon.Map, lr plog.LogRecord) {
			m := lr.Body().SetEmptyMap()
			m.PutStr("k\x00", "v\x00\xff")
			m.PutInt("card", hostileCardValue)
		}),
		eventCase("event-nul-page", func(_ pcommon.Map, lr plog.LogRecord) { lr.Attributes().PutStr("url.path", "/a\x00b\xff") }),
		eventCase("event-nul-user", func(_ pcommon.Map, lr plog.LogRecord) { lr.Attributes().PutStr("user.id", "u\x00\xff") }),
		eventCase("event-nul-geo", func(_ pcommon.Map, lr plog.LogRecord) {
			lr.Attributes().PutStr("geo.country.iso_code", "D\x00E")
			lr.Attributes().PutStr("geo.region.iso_code", "\xffBE")
		}),
		eventCase("event-stacktrace", func(_ pcommon.Map, lr plog.LogRecord) {
			lr.Attributes().PutStr("exception.type", "*errors.errorString\x00")
			lr.Attributes().PutStr("exception.message", "card 4111111111111111 \xff")
			lr.Attributes().PutStr("exception.stacktrace", strings.Repeat("main.f()\x00\n\t/x.go:1\xff\n", 50_000))
		}),
		eventCase("event-int-card", func(_ pcommon.Map, lr plog.LogRecord) { lr.Attributes().PutInt("card", hostileCardValue) }),
		eventCase("event-nul-service", func(res pcommon.Map, _ plog.LogRecord) { res.PutStr("service.name", "s\x00\xff") }),
		eventCase("event-deep-map", func(_ pcommon.Map, lr plog.LogRecord) { nested(300, "deep")(lr.Attributes().PutEmptyMap("d")) }),
		{name: "event-nul-name", event: func(ld plog.Logs, at pcommon.Timestamp) {
			badEvent(ld, at, "e2e-hostile\x00-bad", "event-nul-name")
		}},
		{name: "event-utf8-name", event: func(ld plog.Logs, at pcommon.Timestamp) {
			badEvent(ld, at, "e2e-hostile-\xff", "event-utf8-name")
		}},
	}
}

// body encodes the request of case c sent at time at: the good point (or event) first, then the
// bad one; the content type says protobuf or JSON.
func (c hostileCase) body(t *testing.T, at time.Time) (path, contentType string, body []byte) {
	ts := pcommon.NewTimestampFromTime(at)
	switch {
	case c.json != "":
		return "/v1/metrics", "application/json", []byte(fmt.Sprintf(c.json, c.name, at.UnixNano()))
	case c.metric != nil:
		md := pmetric.NewMetrics()
		_, good := badSum(md, ts, hostileGood, c.name)
		good.SetIntValue(1)
		c.metric(md, ts)
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		require.NoError(t, err)
		return "/v1/metrics", "application/x-protobuf", b
	default:
		ld := plog.NewLogs()
		badEvent(ld, ts, hostileGood, c.name)
		c.event(ld, ts)
		b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		require.NoError(t, err)
		return "/v1/logs", "application/x-protobuf", b
	}
}

// telemetry is a scrape of the collector's own Prometheus metrics, parsed by expfmt: the value of each
// counter, gauge or untyped sample, keyed by name{label="value",...}.
type telemetry map[string]float64

func scrapeTelemetry(t *testing.T, c *collector) telemetry {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.Metrics))
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := telemetry{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue // histograms: no test reads them
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// hostileCounters is the sum of every sampler and pgrollup counter that counts a repair or a
// refusal: a hostile input must move it.
func (tm telemetry) hostileCounters() float64 {
	var n float64
	for k, v := range tm {
		name, _, _ := strings.Cut(k, "{")
		if !strings.Contains(name, "sampler") && !strings.Contains(name, "pgrollup") {
			continue
		}
		for _, w := range []string{"dropped", "refused", "repaired", "sanitized", "truncated", "redacted", "removed", "rejected", "hashed"} {
			if strings.Contains(name, w) {
				n += v
				break
			}
		}
	}
	return n
}

// queueSize is the sum of the exporters' sending-queue sizes. It fails the test when the
// collector reports no queue size at all (a renamed metric must not read as an empty queue).
func (tm telemetry) queueSize(t *testing.T) float64 {
	t.Helper()
	return tm.sum(t, "otelcol_exporter_queue_size")
}

// sum returns the sum of the samples of the metric name (or name_total) whose labels contain every
// one of labels.
// It fails the test when no sample matches: a renamed metric or label must not read as 0.
func (tm telemetry) sum(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	var total float64
	found := false
next:
	for k, v := range tm {
		metric, rest, _ := strings.Cut(k, "{")
		if metric != name && metric != name+"_total" { // Prometheus names counters x_total
			continue
		}
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				continue next
			}
		}
		total += v
		found = true
	}
	require.True(t, found, "the collector reports no sample of %s with %v", name, labels)
	return total
}

func TestHostileInputIsolated(t *testing.T) {
	d := sharedDB(t)
	c := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c.start()

	cases := hostileCases()
	statuses := make(map[string][]int)
	counted := make(map[string]float64)
	var mu sync.Mutex
	hostile := func() {
		client := &http.Client{Timeout: 30 * time.Second}
		for _, hc := range cases {
			before := scrapeTelemetry(t, c).hostileCounters()
			for i := range hostileSends {
				path, ctype, body := hc.body(t, time.Now().Add(time.Duration(i)*time.Microsecond))
				resp, err := client.Post("http://"+c.HTTP+path, ctype, bytes.NewReader(body))
				if !assert.NoError(t, err, hc.name) {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[hc.name] = append(statuses[hc.name], resp.StatusCode)
				mu.Unlock()
			}
			// The repair or refusal is counted by the time its flush is done: wait for it.
			deadline := time.Now().Add(20 * time.Second)
			for {
				n := scrapeTelemetry(t, c).hostileCounters() - before
				if n > 0 || time.Now().After(deadline) {
					counted[hc.name] = n
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	var specs []senderSpec
	for i := range 2 {
		specs = append(specs, senderSpec{metric: "e2e-hostile-healthy", n: 4000, duration: 8 * time.Second,
			endpoint: c.GRPC, attrs: []string{fmt.Sprintf("sender=%d", i)}})
	}
	rs := runSenders(t, specs, hostile)
	requireDelivered(t, rs)
	r := waitForSum(t, d, "e2e-hostile-healthy", "", total(rs), convergeTimeout, settle)
	assert.Less(t, r.converge, 15*time.Second, "healthy counts arrived late")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())

	checkStored := func(t *testing.T) {
		for _, hc := range cases {
			t.Run(hc.name, func(t *testing.T) {
				for _, st := range statuses[hc.name] {
					assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, st, "HTTP status")
				}
				assert.Positive(t, counted[hc.name], "the repair or refusal was not counted")
				good, bad := hostileStored(ctx, t, conn, d.schema, hc)
				outcome := "refused"
				if bad > 0 {
					outcome = "repaired"
				}
				t.Logf("HOSTILE %-20s HTTP %v, %s, counted %v, good stored %d, bad stored %d",
					hc.name, statuses[hc.name], outcome, counted[hc.name], good, bad)
				assert.EqualValues(t, hostileSends, good, "the good point beside the bad one")
				if hc.refusedOnly {
					assert.Zero(t, bad, "a refused input was stored")
				} else {
					assert.Contains(t, []int64{0, hostileSends}, bad, "a bad input is stored once per request (repaired) or never (refused)")
				}
			})
		}
	}
	// The good points beside the bad ones are written by the same flushes as the healthy counts.
	require.Eventually(t, func() bool {
		for _, hc := range cases {
			if good, _ := hostileStored(ctx, t, conn, d.schema, hc); good != hostileSends {
				return false
			}
		}
		return true
	}, convergeTimeout, 200*time.Millisecond, "the good points beside the bad ones")
	checkStored(t)
	requireNoUnsafeText(ctx, t, conn, d.schema)

	// Nothing is retried forever: the queues drain, and stay drained after a restart.
	require.Eventually(t, func() bool { return scrapeTelemetry(t, c).queueSize(t) == 0 }, 30*time.Second, 200*time.Millisecond,
		"the persistent queues did not drain")
	c.stop()
	c.start()
	require.Eventually(t, func() bool { return scrapeTelemetry(t, c).queueSize(t) == 0 }, 30*time.Second, 200*time.Millisecond,
		"the persistent queues did not drain after a restart")
	time.Sleep(settle)
	got, err := d.sum(ctx, "e2e-hostile-healthy", "")
	require.NoError(t, err)
	assert.Equal(t, total(rs), got, "the healthy total after the restart")
	checkStored(t)
}

// hostileStored returns how many good and bad items of case hc were stored: for metrics the
// sums of the two metrics' rollups filtered by the case attribute (the bad metric's name may have
// been repaired, so it is matched by prefix), for events the rows of the events table.
func hostileStored(ctx context.Context, t *testing.T, conn *pgx.Conn, schema string, hc hostileCase) (good, bad int64) {
	t.Helper()
	filter := fmt.Sprintf(`{"case":%q}`, hc.name)
	var q string
	if hc.event != nil {
		q = `SELECT coalesce(sum(CASE WHEN name = $2 THEN 1 END), 0), coalesce(sum(CASE WHEN name <> $2 THEN 1 END), 0)
		     FROM ` + schema + `.events WHERE attributes @> $1::jsonb`
	} else {
		q = `SELECT coalesce(sum(value) FILTER (WHERE metric = $2), 0), coalesce(sum(value) FILTER (WHERE metric <> $2), 0)
		     FROM ` + schema + `.minutely WHERE attributes @> $1::jsonb`
	}
	var g, b float64
	require.NoError(t, conn.QueryRow(ctx, q, filter, hostileGood).Scan(&g, &b))
	return int64(g), int64(b)
}

// requireNoUnsafeText checks every text and jsonb column of every table in the schema: no card
// number, and only valid UTF-8 (Postgres itself refuses NUL, so a NUL would have failed a flush).
func requireNoUnsafeText(ctx context.Context, t *testing.T, conn *pgx.Conn, schema string) {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT c.table_name, c.column_name FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE' AND c.data_type IN ('text', 'jsonb')`, schema)
	require.NoError(t, err)
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var tc [2]string
		return tc, r.Scan(&tc[0], &tc[1])
	})
	require.NoError(t, err)
	require.NotEmpty(t, cols)
	card := strconv.Itoa(hostileCardValue)
	// A bytes value is stored as base64: its card number must not hide there either.
	cardB64 := []string{base64.StdEncoding.EncodeToString([]byte(card))[:16],
		base64.StdEncoding.EncodeToString([]byte(" " + card))[4:20]}
	for _, tc := range cols {
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT %q::text FROM %s.%q WHERE %q IS NOT NULL", tc[1], schema, tc[0], tc[1]))
		require.NoError(t, err)
		vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, v := range vals {
			require.True(t, utf8.ValidString(v), "%s.%s holds invalid UTF-8", tc[0], tc[1])
			require.NotContains(t, v, card, "%s.%s holds a card number", tc[0], tc[1])
			for _, b := range cardB64 {
				require.NotContains(t, v, b, "%s.%s holds a card number in base64", tc[0], tc[1])
			}
		}
	}
}
