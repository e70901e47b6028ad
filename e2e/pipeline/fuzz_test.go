package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/trackhq/track/exporter/pgrollup"
	"github.com/trackhq/track/internal/pgtest"
	"github.com/trackhq/track/processor/sampler"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.M(m))
}

// pushTimeout bounds one push through the pipeline: a flush interval plus one transaction, with a
// wide margin for a loaded machine. A push that takes longer is blocked.
const pushTimeout = 30 * time.Second

// pipe is sampler → pgrollup for both signals, started against a private schema.
type pipe struct {
	metrics consumer.Metrics
	logs    consumer.Logs
	pool    *pgxpool.Pool
	schema  string
	healthy atomic.Int64 // healthy items pushed successfully
	seq     atomic.Int64
}

func newPipe(tb testing.TB) *pipe {
	tb.Helper()
	sc := pgtest.NewSchema(tb)
	ctx := context.Background()
	host := componenttest.NewNopHost()

	ef := pgrollup.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*pgrollup.Config)
	ecfg.DSN = configopaque.String(sc.ServerDSN)
	ecfg.Schema = sc.Name
	ecfg.FlushInterval = 5 * time.Millisecond
	// The push error reaches the test directly: no queue, no retries.
	ecfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	ecfg.BackOffConfig.Enabled = false
	require.NoError(tb, ecfg.Validate())
	eset := exportertest.NewNopSettings(ef.Type())
	me, err := ef.CreateMetrics(ctx, eset, ecfg)
	require.NoError(tb, err)
	le, err := ef.CreateLogs(ctx, eset, ecfg)
	require.NoError(tb, err)

	sf := sampler.NewFactory()
	scfg := sf.CreateDefaultConfig().(*sampler.Config)
	scfg.Hashing.Key = configopaque.String("pipeline-fuzz-hash-key-0123456789")
	require.NoError(tb, confmap.Validate(scfg))
	sset := processortest.NewNopSettings(sf.Type())
	mp, err := sf.CreateMetrics(ctx, sset, scfg, me)
	require.NoError(tb, err)
	lp, err := sf.CreateLogs(ctx, sset, scfg, le)
	require.NoError(tb, err)

	for _, c := range []component.Component{me, le, mp, lp} {
		require.NoError(tb, c.Start(ctx, host))
	}
	tb.Cleanup(func() {
		for _, c := range []component.Component{mp, lp, me, le} {
			require.NoError(tb, c.Shutdown(context.Background()))
		}
	})
	return &pipe{metrics: mp, logs: lp, pool: sc.Pool(tb), schema: sc.Name}
}

const (
	healthyMetric = "fuzz-healthy"
	healthyEvent  = "fuzz-healthy-event"
)

// healthyMetrics is one point of value 1, new each call (a new timestamp, so a new request key).
func (p *pipe) healthyMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "healthy")
	s := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	s.SetName(healthyMetric)
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := sum.DataPoints().AppendEmpty()
	at := pcommon.NewTimestampFromTime(time.Now().Add(time.Duration(p.seq.Add(1))))
	dp.SetStartTimestamp(at - 1)
	dp.SetTimestamp(at)
	dp.SetIntValue(1)
	dp.Attributes().PutStr("plan", "pro")
	return md
}

// healthyLogs is one event, new each call.
func (p *pipe) healthyLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "healthy")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(healthyEvent)
	at := pcommon.NewTimestampFromTime(time.Now().Add(time.Duration(p.seq.Add(1))))
	lr.SetTimestamp(at)
	lr.Attributes().PutStr("url.path", "/ok")
	return ld
}

// push runs the fuzzed and the healthy push at once, so that they join the same flush, and checks
// both results.
func (p *pipe) push(t *testing.T, fuzzed, healthy func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	var g errgroup.Group
	var fuzzErr error
	g.Go(func() error { fuzzErr = fuzzed(ctx); return nil })
	g.Go(func() error { return healthy(ctx) })
	require.NoError(t, g.Wait(), "the healthy push beside a fuzzed one failed")
	p.healthy.Add(1)
	require.NoError(t, ctx.Err(), "a push blocked for %s", pushTimeout)
	if fuzzErr != nil {
		require.True(t, consumererror.IsPermanent(fuzzErr),
			"a fuzzed request was refused with a retryable error, which a queue would retry forever: %v", fuzzErr)
		require.False(t, errors.Is(fuzzErr, context.DeadlineExceeded), "the fuzzed push blocked")
	}
}

// requireHealthyStored checks that every healthy item pushed so far is stored exactly once.
func (p *pipe) requireHealthyStored(t *testing.T, metrics bool) {
	var got float64
	var err error
	if metrics {
		err = p.pool.QueryRow(context.Background(),
			"SELECT coalesce(sum(value), 0) FROM "+p.schema+".minutely WHERE metric = $1 AND service = 'healthy'", healthyMetric).Scan(&got)
	} else {
		err = p.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM "+p.schema+".events WHERE name = $1 AND service = 'healthy'", healthyEvent).Scan(&got)
	}
	require.NoError(t, err)
	require.EqualValues(t, p.healthy.Load(), got, "healthy items stored")
}

// metricSeeds are real requests: the shape track and the OTel SDKs send, and hostile relatives.
func metricSeeds() []pmetric.Metrics {
	var seeds []pmetric.Metrics
	add := func(name string, f func(pcommon.Map, pmetric.NumberDataPoint)) {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "fuzz")
		rm.Resource().Attributes().PutStr("service.instance.id", "i-1")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(name)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		now := pcommon.NewTimestampFromTime(time.Now().Truncate(time.Minute))
		for i := range 3 {
			dp := s.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(now - pcommon.Timestamp(time.Second))
			dp.SetTimestamp(now)
			dp.SetIntValue(int64(i + 1))
			dp.Attributes().PutStr("plan", fmt.Sprint("p", i))
			f(rm.Resource().Attributes(), dp)
		}
		seeds = append(seeds, md)
	}
	add("new-signup", func(pcommon.Map, pmetric.NumberDataPoint) {})
	add("fraudulent-card", func(_ pcommon.Map, dp pmetric.NumberDataPoint) { dp.Attributes().PutStr("plan", "a\x00b") })
	add("card-checked", func(_ pcommon.Map, dp pmetric.NumberDataPoint) { dp.Attributes().PutStr("k\x00ey\xff", "v") })
	add("payments", func(_ pcommon.Map, dp pmetric.NumberDataPoint) { dp.Attributes().PutInt("card", 4111111111111111) })
	add("nested", func(_ pcommon.Map, dp pmetric.NumberDataPoint) {
		m := dp.Attributes().PutEmptyMap("m")
		m.PutEmptySlice("s").AppendEmpty().SetStr("x\x00\xc3")
		m.PutEmptyBytes("b").FromRaw([]byte{0, 1, 0xff})
	})
	add("svc", func(res pcommon.Map, _ pmetric.NumberDataPoint) { res.PutStr("service.name", "s\x00\xff") })
	add("big", func(_ pcommon.Map, dp pmetric.NumberDataPoint) {
		dp.Attributes().PutStr("v", strings.Repeat("é", 4000))
	})
	add("double", func(_ pcommon.Map, dp pmetric.NumberDataPoint) { dp.SetDoubleValue(1e308) })
	add("name\x00bad\xff", func(pcommon.Map, pmetric.NumberDataPoint) {})
	return seeds
}

// logSeeds are real event requests (the shape of track.Event) and hostile relatives.
func logSeeds() []plog.Logs {
	var seeds []plog.Logs
	add := func(name string, f func(pcommon.Map, plog.LogRecord)) {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "fuzz")
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(name)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Truncate(time.Minute)))
		lr.Attributes().PutStr("url.path", "/signup")
		lr.Attributes().PutStr("user.id", "alice")
		lr.Attributes().PutStr("geo.country.iso_code", "DE")
		f(rl.Resource().Attributes(), lr)
		seeds = append(seeds, ld)
	}
	add("page_view", func(pcommon.Map, plog.LogRecord) {})
	add("click", func(_ pcommon.Map, lr plog.LogRecord) { lr.Body().SetStr("bo\x00dy\xff") })
	add("error", func(_ pcommon.Map, lr plog.LogRecord) {
		lr.Attributes().PutStr("exception.message", "card 4111111111111111")
		lr.Attributes().PutStr("exception.stacktrace", "main.f()\x00\n\t/x.go:1\xff")
	})
	add("scroll", func(_ pcommon.Map, lr plog.LogRecord) {
		lr.Attributes().PutStr("user.id", "u\x00\xff")
		lr.Attributes().PutInt("card", 4111111111111111)
		lr.Body().SetEmptyMap().PutStr("k\x00", "v\xff")
	})
	add("ev\x00\xff", func(res pcommon.Map, _ plog.LogRecord) { res.PutStr("service.name", "s\x00") })
	return seeds
}

// FuzzMetricsPipeline mutates encoded OTLP metrics requests and pushes each mutant that still
// decodes through sampler → pgrollup beside a healthy request.
func FuzzMetricsPipeline(f *testing.F) {
	for _, md := range metricSeeds() {
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		require.NoError(f, err)
		f.Add(b)
	}
	p := newPipe(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := pmetricotlp.NewExportRequest()
		if req.UnmarshalProto(b) != nil {
			return // not a request: the receiver refuses it before the pipeline
		}
		p.push(t,
			func(ctx context.Context) error { return p.metrics.ConsumeMetrics(ctx, req.Metrics()) },
			func(ctx context.Context) error { return p.metrics.ConsumeMetrics(ctx, p.healthyMetrics()) })
		p.requireHealthyStored(t, true)
	})
}

// FuzzLogsPipeline is FuzzMetricsPipeline for events.
func FuzzLogsPipeline(f *testing.F) {
	for _, ld := range logSeeds() {
		b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		require.NoError(f, err)
		f.Add(b)
	}
	p := newPipe(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := plogotlp.NewExportRequest()
		if req.UnmarshalProto(b) != nil {
			return
		}
		p.push(t,
			func(ctx context.Context) error { return p.logs.ConsumeLogs(ctx, req.Logs()) },
			func(ctx context.Context) error { return p.logs.ConsumeLogs(ctx, p.healthyLogs()) })
		p.requireHealthyStored(t, false)
	})
}
