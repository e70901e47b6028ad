package pgrollup

import (
	"context"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/requestkey"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadatatest"
	"github.com/trackhq/track/internal/pgtest"
)

// ev is one event of a test logs request, shaped like what track.Event emits after the sampler.
type ev struct {
	name    string
	service string
	at      time.Time
	page    string
	user    string
	country string
	region  string
	body    string
	// weight is sampling.adjusted_count; 0 leaves the attribute out. raw, when set, is put instead.
	weight float64
	raw    any
	attrs  map[string]any
}

// logsRequest builds a plog.Logs with one resource (and a random instance id the exporter drops)
// per event.
func logsRequest(events ...ev) plog.Logs {
	ld := plog.NewLogs()
	for i, e := range events {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", e.service)
		rl.Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("instance-%d", i%3))
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(e.name)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(e.at))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(e.at))
		a := lr.Attributes()
		for k, v := range map[string]string{attrPage: e.page, attrUser: e.user, attrCountry: e.country, attrRegion: e.region} {
			if v != "" {
				a.PutStr(k, v)
			}
		}
		switch {
		case e.raw != nil:
			_ = a.PutEmpty(attrAdjustedCount).FromRaw(e.raw)
		case e.weight != 0:
			a.PutDouble(attrAdjustedCount, e.weight)
		}
		for k, v := range e.attrs {
			_ = a.PutEmpty(k).FromRaw(v)
		}
		if e.body != "" {
			lr.Body().SetStr(e.body)
		}
	}
	return ld
}

func (te *testExporter) pushEvents(t testing.TB, events ...ev) {
	t.Helper()
	require.NoError(t, te.pushLogs(context.Background(), logsRequest(events...)))
}

func (te *testExporter) count(t testing.TB, query string, args ...any) float64 {
	t.Helper()
	var v float64
	require.NoError(t, te.pool.QueryRow(context.Background(), query, args...).Scan(&v))
	return v
}

// TestEventsExact pushes events from concurrent senders, unsampled, and checks that the stored
// events and the rollups of event.<name> are exact, and that a row carries every field.
func TestEventsExact(t *testing.T) {
	te := startExporter(t, nil)
	base := hoursAgo(3)
	names := []string{"page_view", "click", "scroll"}
	const workers, requests, perRequest = 6, 10, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range requests {
				events := make([]ev, perRequest)
				for i := range events {
					events[i] = ev{
						name: names[i%3], service: []string{"web", "shop"}[w%2],
						at:   base.Add(time.Duration(w*requests*perRequest+r*perRequest+i) * time.Second),
						user: fmt.Sprintf("u%d", w), page: "/signup",
					}
				}
				assert.NoError(t, te.pushLogs(context.Background(), logsRequest(events...)))
			}
		}()
	}
	wg.Wait()
	const total = workers * requests * perRequest
	assert.Equal(t, float64(total), te.count(t, "SELECT count(*) FROM "+te.schema+".events"))
	for _, n := range names {
		assert.Equal(t, float64(total/3), te.count(t, "SELECT count(*) FROM "+te.schema+".events WHERE name = $1", n), n)
		for _, view := range []string{"minutely", "hourly", "daily"} {
			assert.Equal(t, float64(total/3), te.total(t, view, "event."+n), view+" "+n)
		}
	}
	// Series grow with names x services, not with events.
	assert.Equal(t, 6.0, te.count(t, "SELECT count(*) FROM "+te.schema+".series"))
	assert.LessOrEqual(t, te.count(t, "SELECT count(*) FROM "+te.schema+".rollup_hour"), 6.0*4)
	// track.series charts events like counters.
	rows := te.series(t, "event.click", base, base.Add(3*time.Hour), "1 hour", `{"service":"web"}`)
	var sum float64
	for _, r := range rows {
		sum += r.Value
	}
	assert.Equal(t, float64(total/3/2), sum)

	assertTotalsAgree(t, te.pool, te.schema)

	// One row with every field.
	at := hoursAgo(1).Add(90 * time.Second)
	te.pushEvents(t, ev{name: "error", service: "web", at: at, page: "/signup/payment", user: "h:abc", country: "FR",
		region: "FR-IDF", body: "card declined", weight: 1,
		attrs: map[string]any{"exception.type": "*errors.errorString", "exception.stacktrace": "main.pay()\n\tpay.go:12",
			"click.target": "#pay"}})
	var (
		gotAt                                   time.Time
		service, page, user, country, region, b string
		attrs                                   map[string]any
		w                                       float64
	)
	require.NoError(t, te.pool.QueryRow(context.Background(), `SELECT time, service, page, user_id, country, region, body, attributes, adjusted_count
  FROM `+te.schema+`.events WHERE name = 'error'`).Scan(&gotAt, &service, &page, &user, &country, &region, &b, &attrs, &w))
	assert.True(t, at.Equal(gotAt), "%s != %s", at, gotAt)
	assert.Equal(t, []string{"web", "/signup/payment", "h:abc", "FR", "FR-IDF", "card declined"}, []string{service, page, user, country, region, b})
	assert.Equal(t, map[string]any{"exception.type": "*errors.errorString", "exception.stacktrace": "main.pay()\n\tpay.go:12",
		"click.target": "#pay"}, attrs, "the columns' keys and sampling.adjusted_count are not repeated in attributes")
	assert.Equal(t, 1.0, w)
	metadatatest.AssertEqualExporterPgrollupEventsStored(t, te.tel,
		[]metricdata.DataPoint[int64]{{Value: total + 1}}, metricdatatest.IgnoreTimestamp())
}

// TestEventsAdjustedCount checks that rollups are weighted by sampling.adjusted_count (1 when
// absent, int or double) and that each stored row keeps its own.
func TestEventsAdjustedCount(t *testing.T) {
	te := startExporter(t, nil)
	at := hoursAgo(2).Add(5 * time.Minute)
	te.pushEvents(t,
		ev{name: "scroll", service: "web", at: at, user: "a", weight: 10},
		ev{name: "scroll", service: "web", at: at, user: "b", weight: 2.5},
		ev{name: "scroll", service: "web", at: at, user: "c", raw: int64(3)},
		ev{name: "scroll", service: "web", at: at, user: "d"},
	)
	for _, view := range []string{"minutely", "hourly", "daily"} {
		assert.Equal(t, 16.5, te.total(t, view, "event.scroll"), view)
	}
	assert.Equal(t, 4.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events"))
	assert.Equal(t, 16.5, te.count(t, "SELECT sum(adjusted_count) FROM "+te.schema+".events"))
	assert.Equal(t, 1.0, te.count(t, "SELECT adjusted_count FROM "+te.schema+".events WHERE user_id = 'd'"))
}

func TestEventRefusals(t *testing.T) {
	sc := pgtest.NewSchema(t)
	core, logs := observer.New(zap.WarnLevel)
	te := startExporterWith(t, sc, zap.New(core))
	now := time.Now().UTC()
	ok := now.Add(-time.Hour)
	tests := []struct {
		reason string
		event  ev
	}{
		{"missing_event_name", ev{name: "", at: ok}},
		{"bad_adjusted_count", ev{name: "nan", at: ok, weight: math.NaN()}},
		{"bad_adjusted_count", ev{name: "zero", at: ok, raw: int64(0)}},
		{"bad_adjusted_count", ev{name: "text", at: ok, raw: "ten"}},
		{"too_old", ev{name: "old", at: now.Add(-4 * 365 * 24 * time.Hour)}},
		{"future", ev{name: "future", at: now.Add(2 * time.Hour)}},
		{"name_too_long", ev{name: strings.Repeat("e", maxNameBytes+1), at: ok}},
		{"bad_adjusted_count", ev{name: "huge", at: ok, raw: float64(maxDelta * 2)}},
	}
	var events []ev
	counts := map[string]int64{}
	for _, tt := range tests {
		tt.event.service = "web"
		// Twice each: still one log line per (event name, reason).
		events = append(events, tt.event, tt.event)
		counts[tt.reason] += 2
	}
	events = append(events, ev{name: "good", service: "web", at: ok, weight: 4})
	require.NoError(t, te.pushLogs(context.Background(), logsRequest(events...)), "refusals never fail the request")
	require.NoError(t, te.pushLogs(context.Background(), logsRequest(events[:2]...)), "a request with nothing countable succeeds")
	counts["missing_event_name"] += 2

	assert.Equal(t, 4.0, te.count(t, "SELECT coalesce(sum(value), 0) FROM "+te.schema+".minutely"), "only the good event is counted")
	assert.Equal(t, 1.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events"), "only the good event is stored")
	var want []metricdata.DataPoint[int64]
	for _, r := range []string{"missing_event_name", "bad_adjusted_count", "too_old", "future", "name_too_long"} {
		want = append(want, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("reason", r)), Value: counts[r]})
	}
	metadatatest.AssertEqualExporterPgrollupEventsRefused(t, te.tel, want, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualExporterPgrollupEventsAccepted(t, te.tel,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	assert.Equal(t, len(tests), logs.Len(), "one log line per event name and reason")
	missing := logs.FilterField(zap.String("reason", "missing_event_name")).All()
	require.Len(t, missing, 1)
	assert.Contains(t, missing[0].ContextMap()["error"], "without an event name")
}

// startExporterWith is startExporter with a logger.
func startExporterWith(t *testing.T, sc *pgtest.Schema, logger *zap.Logger) *testExporter {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(sc.ServerDSN)
	cfg.Schema = sc.Name
	cfg.FlushInterval = 10 * time.Millisecond
	tel := componenttest.NewTelemetry()
	set := metadatatest.NewSettings(tel)
	set.Logger = logger
	e, err := newExporter(cfg, set)
	require.NoError(t, err)
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, e.shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return &testExporter{rollupExporter: e, tel: tel, pool: sc.Pool(t), sc: sc}
}

// TestEventsReplay pushes the same logs request again (a retry after a lost acknowledgement, a
// persistent-queue replay), also twice within one flush: events are stored and counted once.
func TestEventsReplay(t *testing.T) {
	te := startExporter(t, nil)
	at := hoursAgo(1)
	ld := logsRequest(ev{name: "signup_start", service: "web", at: at, user: "u1"},
		ev{name: "signup_start", service: "web", at: at.Add(time.Second), user: "u2", weight: 2})
	require.NoError(t, te.pushLogs(context.Background(), ld))
	require.NoError(t, te.pushLogs(context.Background(), ld))
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); assert.NoError(t, te.pushLogs(context.Background(), ld)) }()
	}
	wg.Wait()
	assert.Equal(t, 3.0, te.total(t, "minutely", "event.signup_start"))
	assert.Equal(t, 3.0, te.total(t, "daily", "event.signup_start"))
	assert.Equal(t, 2.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events"))
	metadatatest.AssertEqualExporterPgrollupItemsCommitted(t, te.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualExporterPgrollupItemsDuplicate(t, te.tel, []metricdata.DataPoint[int64]{{Value: 4}}, metricdatatest.IgnoreTimestamp())
	// A metrics request and a logs request never share a key.
	mk, err := requestkey.Metrics(request(pt{metric: "m", at: at, value: 1}))
	require.NoError(t, err)
	lk, err := requestkey.Logs(ld)
	require.NoError(t, err)
	assert.NotEqual(t, mk, lk)
}

func partitionNames(t *testing.T, te *testExporter) []string {
	t.Helper()
	rows, err := te.pool.Query(context.Background(), `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = ($1 || '.events')::regclass ORDER BY 1`, te.schema)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func partName(t time.Time) string { return "events_p" + t.UTC().Format("20060102") }

// TestEventRetention stores events on several days, then moves the clock forward: retention drops
// the partitions of the days wholly past retention::events, and events already past it are counted
// but not stored.
func TestEventRetention(t *testing.T) {
	te := startExporter(t, nil, func(c *Config) { c.Retention.Events = Period(7 * day) })
	ctx := context.Background()
	clock := time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
	te.now = func() time.Time { return clock }
	days := []int{1, 3, 5, 9} // days ago, at noon
	var events []ev
	for _, d := range days {
		events = append(events, ev{name: "page_view", service: "web", at: clock.Add(-time.Duration(d) * day), user: "u"})
	}
	te.pushEvents(t, events...)
	assert.Equal(t, 4.0, te.total(t, "daily", "event.page_view"), "all are counted")
	assert.Equal(t, 3.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events"), "the 9-day-old event is not stored raw")
	parts := partitionNames(t, te)
	for _, d := range []int{1, 3, 5} {
		assert.Contains(t, parts, partName(clock.Add(-time.Duration(d)*day)))
	}
	assert.NotContains(t, parts, partName(clock.Add(-9*day)))
	for d := range partitionsAhead + 1 {
		assert.Contains(t, parts, partName(clock.Add(time.Duration(d)*day)), "created ahead at start")
	}

	// Three days later, the events of 5 days ago are 8 days old: their day ended 7.5 days ago.
	clock = clock.Add(3 * day)
	require.NoError(t, te.runRetention(ctx))
	parts = partitionNames(t, te)
	assert.NotContains(t, parts, partName(clock.Add(-8*day)))
	assert.Contains(t, parts, partName(clock.Add(-6*day)), "the day of the event now 6 days old ended 5.5 days ago: kept")
	assert.Contains(t, parts, partName(clock.Add(partitionsAhead*day)), "created ahead by retention")
	assert.Equal(t, 2.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events"))
	require.NoError(t, te.runRetention(ctx), "idempotent")
	assert.Equal(t, 2.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events"))
	dropped := counter(t, te.tel, "event_partitions_dropped")
	assert.GreaterOrEqual(t, dropped, int64(1))

	// A write after its partition was dropped behind the exporter's back fails once, then its retry
	// re-creates the partition.
	clock = time.Now().UTC()
	te.pushEvents(t, ev{name: "page_view", service: "web", at: clock.Add(-time.Hour), user: "u"})
	_, err := te.pool.Exec(ctx, "DROP TABLE "+te.schema+"."+partName(clock.Add(-time.Hour)))
	require.NoError(t, err)
	late := logsRequest(ev{name: "page_view", service: "web", at: clock.Add(-time.Hour), user: "v"})
	require.Error(t, te.pushLogs(ctx, late), "the first attempt finds no partition")
	require.NoError(t, te.pushLogs(ctx, late), "its retry (exporterhelper's) re-creates it")
	assert.Equal(t, 1.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events WHERE user_id = 'v'"))
}

// TestEventPartitionsConcurrent creates the same partitions from several connections at once.
func TestEventPartitionsConcurrent(t *testing.T) {
	te := startExporter(t, nil)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := te.pool.Exec(context.Background(), "SELECT "+te.schema+".ensure_event_partitions('2020-01-01', '2020-01-20')")
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.Equal(t, 20.0, te.count(t, "SELECT count(*) FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE 'events_p2020%' AND relkind = 'r'", te.sc.Name))
}

// TestLogsThroughFactory runs the logs signal as the collector does: through the factory and
// exporterhelper's queue.
func TestLogsThroughFactory(t *testing.T) {
	sc := pgtest.NewSchema(t)
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(sc.ServerDSN)
	cfg.Schema = sc.Name
	cfg.FlushInterval = 10 * time.Millisecond
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(ctx)) }()
	exp, err := NewFactory().CreateLogs(ctx, metadatatest.NewSettings(tel), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	at := hoursAgo(1)
	for i := range 5 {
		require.NoError(t, exp.ConsumeLogs(ctx, logsRequest(ev{name: "click", service: "web", at: at.Add(time.Duration(i) * time.Second), user: "u"})))
	}
	require.NoError(t, exp.Shutdown(ctx), "shutdown drains the queue")
	te := &testExporter{pool: sc.Pool(t), rollupExporter: &rollupExporter{schema: sc.Name}}
	assert.Equal(t, 5.0, te.total(t, "minutely", "event.click"))
	assert.Equal(t, 5.0, te.count(t, "SELECT count(*) FROM "+sc.Name+".events"))
}

// TestEventsTwoCollectors has two exporters on one schema write events on days that have no
// partition yet, at the same time: partitions are created once, nothing fails, counts are exact.
func TestEventsTwoCollectors(t *testing.T) {
	sc := pgtest.NewSchema(t)
	a, b := startExporter(t, sc), startExporter(t, sc)
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(-20*day + 12*time.Hour)
	var wg sync.WaitGroup
	for i, te := range []*testExporter{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 10 {
				var events []ev
				for d := range 8 {
					events = append(events, ev{name: "page_view", service: "web", at: base.Add(time.Duration(d)*day + time.Duration(r)*time.Second),
						user: fmt.Sprintf("c%d", i)})
				}
				assert.NoError(t, te.pushLogs(context.Background(), logsRequest(events...)))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 160.0, a.count(t, "SELECT count(*) FROM "+sc.Name+".events"))
	assert.Equal(t, 160.0, a.total(t, "daily", "event.page_view"))
	assert.Equal(t, 8.0, a.count(t, "SELECT count(DISTINCT tableoid) FROM "+sc.Name+".events"))
}
