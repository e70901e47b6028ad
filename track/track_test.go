package track_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/trackhq/track/internal/otlptest"
	"github.com/trackhq/track/track"
)

// never is an interval long enough that only Flush and Shutdown export.
const never = time.Hour

func newTracker(t *testing.T, r *otlptest.Receiver, opts ...track.Option) *track.Tracker {
	t.Helper()
	opts = append([]track.Option{track.WithEndpoint(r.GRPCEndpoint), track.WithInterval(never), track.WithServiceName("test-service")}, opts...)
	tr, err := track.New(context.Background(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func TestExactTotalsFromManyGoroutinesOverManyIntervals(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	const goroutines, perGoroutine, intervals = 8, 2000, 5
	for interval := 0; interval < intervals; interval++ {
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perGoroutine; i++ {
					tr.Increment("new-signup")
					tr.Add("cards-checked", 2, attribute.String("result", []string{"ok", "fraudulent"}[i%2]), attribute.Int("shard", g%3))
				}
			}()
		}
		wg.Wait()
		require.NoError(t, tr.Flush(context.Background()))
	}
	require.NoError(t, tr.Shutdown(context.Background()))

	n := int64(goroutines * perGoroutine * intervals)
	assert.Equal(t, n, r.Sum("new-signup", nil))
	assert.Equal(t, 2*n, r.Sum("cards-checked", nil))
	assert.Equal(t, n, r.Sum("cards-checked", map[string]string{"result": "fraudulent"}))
	for _, p := range counted(r) {
		assert.True(t, p.Delta && p.Monotonic, "every point is a monotonic delta sum")
		assert.Equal(t, "test-service", p.Resource["service.name"])
		assert.NotEmpty(t, p.Resource["service.instance.id"])
		assert.NotEmpty(t, p.Resource["host.name"])
	}
	st := tr.Stats()
	assert.Equal(t, uint64(len(counted(r))), st.PointsExported)
	assert.Zero(t, st.PointsDropped)
	assert.Zero(t, st.PointsInBacklog)
}

func TestOutageKeepsEveryDeltaInItsOwnWindow(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	ctx := context.Background()
	const intervals = 10
	var sent int64
	for i := 0; i < intervals; i++ {
		r.SetFailing(i >= 2 && i < 8)
		tr.Add("logins", int64(i+1))
		sent += int64(i + 1)
		_ = tr.Flush(ctx)
		time.Sleep(2 * time.Millisecond) // distinct collection timestamps
	}
	r.SetFailing(false)
	require.NoError(t, tr.Shutdown(ctx))

	assert.Equal(t, sent, r.Sum("logins", nil))
	points := counted(r)
	require.Len(t, points, intervals, "one point per interval: nothing merged")
	for i, p := range points {
		assert.Equal(t, int64(i+1), p.Value, "deltas arrive in the order they were counted")
		if i > 0 {
			assert.False(t, p.Start.Before(points[i-1].End), "windows do not overlap")
		}
	}
	st := tr.Stats()
	assert.Equal(t, uint64(intervals), st.PointsExported)
	assert.Positive(t, st.ExportFailures)
	assert.Zero(t, st.PointsDropped)
}

func TestBacklogOverflowDropsOldestAndCountsIt(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r, track.WithBacklog(3))
	ctx := context.Background()
	r.SetFailing(true)
	const intervals = 10
	for i := 0; i < intervals; i++ {
		tr.Increment("payments", attribute.Int("interval", i))
		_ = tr.Flush(ctx)
	}
	st := tr.Stats()
	assert.Equal(t, int64(3), st.PointsInBacklog)
	r.SetFailing(false)
	require.NoError(t, tr.Shutdown(ctx))

	st = tr.Stats()
	received := r.Sum("payments", nil)
	assert.Equal(t, int64(intervals)-received, int64(st.PointsDropped), "what was dropped is what is missing")
	assert.Equal(t, int64(3), received)
	got := map[string]bool{}
	for _, p := range counted(r) {
		got[p.Attrs["interval"]] = true
	}
	assert.Equal(t, map[string]bool{"7": true, "8": true, "9": true}, got, "the newest exports survive")
}

func TestShutdownFlushesTheLastInterval(t *testing.T) {
	for _, proto := range []string{track.ProtocolGRPC, track.ProtocolHTTPProtobuf} {
		t.Run(proto, func(t *testing.T) {
			r := otlptest.Start(t)
			endpoint := r.GRPCEndpoint
			if proto == track.ProtocolHTTPProtobuf {
				endpoint = r.HTTPEndpoint
			}
			tr := newTracker(t, r, track.WithProtocol(proto), track.WithEndpoint(endpoint))
			tr.Add("new-signup", 41)
			tr.Increment("new-signup")
			require.NoError(t, tr.Shutdown(context.Background()))
			assert.Equal(t, int64(42), r.Sum("new-signup", nil))
		})
	}
}

func TestShutdownGivesUpAtItsDeadlineAndCountsTheLoss(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	r.SetFailing(true)
	tr.Add("errors", 5)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := tr.Shutdown(ctx)
	require.ErrorIs(t, err, track.ErrBacklogDropped)
	st := tr.Stats()
	assert.Equal(t, uint64(1), st.PointsDropped)
	assert.Zero(t, st.PointsInBacklog)
}

func TestCallsNeverBlockWhileTheCollectorHangs(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	r.SetHang(time.Minute)
	flushCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	flushed := make(chan struct{})
	tr.Increment("requests")
	go func() {
		_ = tr.Flush(flushCtx) // blocks in the exporter until flushCtx ends
		close(flushed)
	}()
	for i := 0; i < 100000; i++ {
		tr.Increment("requests")
	}
	select {
	case <-flushed:
		t.Fatal("the export should still be hanging; the test proves nothing")
	default:
	}
	<-flushed
	r.SetHang(0)
	require.NoError(t, tr.Shutdown(context.Background()))
	assert.Equal(t, int64(100001), r.Sum("requests", nil))
}

func TestRefusesInvalidInput(t *testing.T) {
	r := otlptest.Start(t)
	var mu sync.Mutex
	var reported []error
	tr := newTracker(t, r, track.WithErrorHandler(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}))
	cases := []struct {
		name string
		call func()
		want error
	}{
		{"empty name", func() { tr.Increment("") }, track.ErrInvalidName},
		{"too long", func() { tr.Increment(strings.Repeat("a", 256)) }, track.ErrInvalidName},
		{"starts with digit", func() { tr.Increment("1signup") }, track.ErrInvalidName},
		{"space", func() { tr.Increment("new signup") }, track.ErrInvalidName},
		{"non-ASCII", func() { tr.Increment("anmeldung-ü") }, track.ErrInvalidName},
		{"negative add", func() { tr.Add("signups", -1) }, track.ErrNegative},
		{"negative handle add", func() { tr.Counter("signups").Add(-3) }, track.ErrNegative},
		{"invalid handle", func() { tr.Counter("bad name").Increment() }, track.ErrInvalidName},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := tr.Stats().Refused
			require.NotPanics(t, c.call)
			assert.Equal(t, before+1, tr.Stats().Refused)
			if i == 0 {
				require.Eventually(t, func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(reported) == 1
				}, 5*time.Second, time.Millisecond)
				mu.Lock()
				assert.ErrorIs(t, reported[0], c.want)
				mu.Unlock()
			}
		})
	}
	mu.Lock()
	assert.Len(t, reported, 1, "reports are rate-limited to one per second")
	mu.Unlock()

	tr.Increment("a.valid_name-with/all-1")
	require.NoError(t, tr.Shutdown(context.Background()))
	assert.Equal(t, int64(1), r.Sum("a.valid_name-with/all-1", nil))
	for _, p := range counted(r) {
		assert.Equal(t, "a.valid_name-with/all-1", p.Metric, "refused calls export nothing")
	}
}

func TestSeriesBeyondTheLimitFoldIntoOverflow(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r, track.WithSeriesLimit(5))
	const users = 50
	for i := 0; i < users; i++ {
		tr.Increment("logins", attribute.String("user", fmt.Sprint(i)))
		tr.Increment("logins", attribute.String("user", fmt.Sprint(i)))
	}
	require.NoError(t, tr.Shutdown(context.Background()))
	assert.Equal(t, int64(2*users), r.Sum("logins", nil), "totals stay exact")
	assert.Equal(t, int64(2*(users-5)), r.Sum("logins", map[string]string{"otel.metric.overflow": "true"}))
	series := map[string]bool{}
	for _, p := range counted(r) {
		series[fmt.Sprint(p.Attrs)] = true
	}
	assert.Len(t, series, 6, "five series and the overflow")
}

func TestAttributeOrderAndTypesFindTheSameSeries(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	a, b := attribute.String("result", "ok"), attribute.Int64("shard", 3)
	tr.Increment("checks", a, b)
	tr.Increment("checks", b, a)
	tr.Increment("checks", a, b, a) // duplicate key: the last value wins, as in attribute.NewSet
	tr.Increment("checks", attribute.StringSlice("tags", []string{"x", "y"}))
	tr.Increment("checks", attribute.StringSlice("tags", []string{"x", "y"}))
	tr.Increment("checks", attribute.Bool("retry", true), attribute.Float64("ratio", 0.5))
	tr.Increment("checks", attribute.Float64("ratio", 0.5), attribute.Bool("retry", true))
	name := strings.Join([]string{"run", "time"}, "-") // built at run time: no shared address
	for i := 0; i < 3; i++ {
		tr.Increment(name + "")
		tr.Increment(strings.Clone(name))
	}
	require.NoError(t, tr.Shutdown(context.Background()))

	var pts []string
	for _, p := range counted(r) {
		if p.Metric == "checks" {
			keys := make([]string, 0, len(p.Attrs))
			for k, v := range p.Attrs {
				keys = append(keys, k+"="+v)
			}
			sort.Strings(keys)
			pts = append(pts, fmt.Sprintf("%v:%d", keys, p.Value))
		}
	}
	sort.Strings(pts)
	assert.Equal(t, []string{
		"[ratio=0.5 retry=true]:2",
		"[result=ok shard=3]:3",
		`[tags=array_value:{values:{string_value:"x"} values:{string_value:"y"}}]:2`,
	}, pts)
	assert.Equal(t, int64(6), r.Sum("run-time", nil))
}

func TestEnvironmentVariablesAndOptionPrecedence(t *testing.T) {
	r := otlptest.Start(t)
	cases := []struct {
		name    string
		env     map[string]string
		opts    []track.Option
		service string
	}{
		{
			name: "grpc from env",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + r.GRPCEndpoint,
				"OTEL_SERVICE_NAME":           "env-service",
				"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test,team=growth",
				"OTEL_EXPORTER_OTLP_HEADERS":  "authorization=Bearer%20s3cret",
			},
			service: "env-service",
		},
		{
			name: "http from env",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
				"OTEL_EXPORTER_OTLP_ENDPOINT": r.HTTPEndpoint,
				"OTEL_SERVICE_NAME":           "env-service",
				"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test,team=growth",
				"OTEL_EXPORTER_OTLP_HEADERS":  "authorization=Bearer%20s3cret",
			},
			service: "env-service",
		},
		{
			name: "metrics-specific endpoint wins over the generic one",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":         "http://127.0.0.1:1",
				"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://" + r.GRPCEndpoint,
				"OTEL_RESOURCE_ATTRIBUTES":            "service.name=attr-service,deployment.environment=test,team=growth",
				"OTEL_EXPORTER_OTLP_HEADERS":          "authorization=Bearer%20s3cret",
			},
			service: "attr-service",
		},
		{
			name: "options win over env",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
				"OTEL_SERVICE_NAME":           "env-service",
				"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test,team=growth",
			},
			opts: []track.Option{
				track.WithProtocol(track.ProtocolGRPC), track.WithEndpoint(r.GRPCEndpoint),
				track.WithServiceName("option-service"), track.WithHeaders(map[string]string{"authorization": "Bearer s3cret"}),
			},
			service: "option-service",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			before := len(r.Requests())
			tr, err := track.New(context.Background(), append([]track.Option{track.WithInterval(never)}, c.opts...)...)
			require.NoError(t, err)
			tr.Increment("env-check")
			require.NoError(t, tr.Shutdown(context.Background()))
			require.Len(t, r.Requests(), before+1)
			p := counted(r)[len(counted(r))-1]
			assert.Equal(t, c.service, p.Resource["service.name"])
			assert.Equal(t, "test", p.Resource["deployment.environment"])
			assert.Equal(t, "growth", p.Resource["team"])
			assert.Equal(t, "Bearer s3cret", r.Headers()[before]["authorization"])
		})
	}

	t.Run("export interval from env", func(t *testing.T) {
		t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "20")
		before := r.Sum("ticks", nil)
		tr, err := track.New(context.Background(), track.WithEndpoint(r.GRPCEndpoint))
		require.NoError(t, err)
		defer func() { _ = tr.Shutdown(context.Background()) }()
		tr.Increment("ticks")
		require.Eventually(t, func() bool { return r.Sum("ticks", nil) == before+1 }, 10*time.Second, 5*time.Millisecond,
			"exported by the periodic reader, without Flush or Shutdown")
	})
}

func TestInvalidOptionsAreRefused(t *testing.T) {
	cases := []struct {
		name string
		opts []track.Option
		env  map[string]string
		want string
	}{
		{"protocol option", []track.Option{track.WithProtocol("udp")}, nil, `WithProtocol: "udp"`},
		{"protocol env", nil, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, `OTLP protocol "http/json"`},
		{"interval", []track.Option{track.WithInterval(0)}, nil, "WithInterval"},
		{"backlog", []track.Option{track.WithBacklog(-1)}, nil, "WithBacklog"},
		{"series limit", []track.Option{track.WithSeriesLimit(0)}, nil, "WithSeriesLimit"},
		{"empty service name", []track.Option{track.WithServiceName("")}, nil, "WithServiceName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			tr, err := track.New(context.Background(), c.opts...)
			require.ErrorIs(t, err, track.ErrInvalidOption)
			require.ErrorContains(t, err, c.want)
			assert.Nil(t, tr)
		})
	}
}

func TestPackageLevelTrackerBeforeStartAndAcrossRestarts(t *testing.T) {
	r := otlptest.Start(t)
	ctx := context.Background()
	track.Increment("pkg-level")
	track.Add("pkg-level", 2)
	h := track.Counter("pkg-level", attribute.String("via", "handle"))
	h.Increment()

	shutdown, err := track.Start(ctx, track.WithEndpoint(r.GRPCEndpoint), track.WithInterval(never))
	require.NoError(t, err)
	_, err = track.Start(ctx, track.WithEndpoint(r.GRPCEndpoint))
	require.ErrorIs(t, err, track.ErrAlreadyStarted)
	track.Increment("pkg-level")
	require.NoError(t, shutdown(ctx))
	assert.Equal(t, int64(5), r.Sum("pkg-level", nil), "counts made before Start are exported")

	track.Increment("pkg-level") // after shutdown: kept, not exported
	assert.Equal(t, int64(5), r.Sum("pkg-level", nil))

	shutdown, err = track.Start(ctx, track.WithEndpoint(r.GRPCEndpoint), track.WithInterval(never))
	require.NoError(t, err)
	h.Add(10)
	require.NoError(t, shutdown(ctx))
	assert.Equal(t, int64(16), r.Sum("pkg-level", nil), "a second Start reports only what came after the first")
	assert.Equal(t, int64(11), r.Sum("pkg-level", map[string]string{"via": "handle"}))
	assert.GreaterOrEqual(t, track.Stats().PointsExported, uint64(3))
}

func TestWithMeterProviderReportsCumulativeTotalsOnTheServicesProvider(t *testing.T) {
	reader := sdkmetric.NewManualReader() // cumulative, as most services' providers are
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	tr, err := track.New(context.Background(), track.WithMeterProvider(mp))
	require.NoError(t, err)
	defer func() { _ = tr.Shutdown(context.Background()) }()

	collect := func() int64 {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		var total int64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "orders" {
					for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
						total += dp.Value
					}
				}
			}
		}
		return total
	}
	tr.Add("orders", 3)
	assert.Equal(t, int64(3), collect())
	tr.Add("orders", 4)
	assert.Equal(t, int64(7), collect(), "a cumulative reader sees totals since start")
}

func TestErrorsWrapSentinels(t *testing.T) {
	r := otlptest.Start(t)
	got := make(chan error, 1)
	tr := newTracker(t, r, track.WithErrorHandler(func(err error) { got <- err }))
	tr.Add("x", -5)
	err := <-got
	assert.True(t, errors.Is(err, track.ErrNegative))
	assert.Contains(t, err.Error(), `Add("x", -5)`)
}
