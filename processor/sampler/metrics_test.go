package sampler

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/processor/sampler/internal/metadata"
	"github.com/trackhq/track/processor/sampler/internal/metadatatest"
)

// counter returns the value of one of the processor's counters for the given attributes: 0 when
// that counter has no such point yet, and a test failure when name is not one of the counters the
// generated telemetry builder declares (a renamed metric must not read as 0). Where a test knows
// every point of a counter, it asserts them with the generated metadatatest assertions instead.
func counter(t *testing.T, tt *componenttest.Telemetry, name string, kvs ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tt.GetMetric("otelcol_" + name)
	if err != nil {
		require.Contains(t, declaredCounters(t), "otelcol_"+name, "not a counter of metadata.yaml")
		return 0
	}
	want := attribute.NewSet(kvs...)
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return 0
}

// declaredCounters returns the names of the counters of the generated telemetry builder, found by
// adding 1 to each of them and collecting what a reader of their own sees.
func declaredCounters(t *testing.T) []string {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	set := componenttest.NewNopTelemetrySettings()
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tb, err := metadata.NewTelemetryBuilder(set)
	require.NoError(t, err)
	defer tb.Shutdown()
	v := reflect.ValueOf(tb).Elem()
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		if c, ok := v.Field(i).Interface().(metric.Int64Counter); ok {
			c.Add(context.Background(), 1)
		}
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var names []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
		}
	}
	require.NotEmpty(t, names)
	return names
}

func reason(r string) attribute.KeyValue { return attribute.String("reason", r) }

var (
	sigMetrics = attribute.String("otel.signal", "metrics")
	sigLogs    = attribute.String("otel.signal", "logs")
)

// deltaSum appends a monotonic delta sum metric and returns its points.
func deltaSum(sm pmetric.ScopeMetrics, name string) pmetric.NumberDataPointSlice {
	m := sm.Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	return s.DataPoints()
}

func newMetrics() (pmetric.Metrics, pmetric.ResourceMetrics, pmetric.ScopeMetrics) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()
	return md, rm, sm
}

func TestMetricsValidation(t *testing.T) {
	tests := []struct {
		name   string
		build  func(sm pmetric.ScopeMetrics)
		kept   int
		reason string
	}{
		{"valid name and value", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "new-signup").AppendEmpty().SetIntValue(1) }, 1, ""},
		{"name starting with a digit", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "1signup").AppendEmpty().SetIntValue(1) }, 0, "invalid_metric_name"},
		{"name with a space", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "new signup").AppendEmpty().SetIntValue(1) }, 0, "invalid_metric_name"},
		{"empty name", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "").AppendEmpty().SetIntValue(1) }, 0, "invalid_metric_name"},
		{"name too long", func(sm pmetric.ScopeMetrics) {
			deltaSum(sm, strings.Repeat("a", 256)).AppendEmpty().SetIntValue(1)
		}, 0, "invalid_metric_name"},
		{"NaN", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "c").AppendEmpty().SetDoubleValue(math.NaN()) }, 0, "invalid_value"},
		{"+Inf", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "c").AppendEmpty().SetDoubleValue(math.Inf(1)) }, 0, "invalid_value"},
		{"-Inf", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "c").AppendEmpty().SetDoubleValue(math.Inf(-1)) }, 0, "invalid_value"},
		{"negative double", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "c").AppendEmpty().SetDoubleValue(-0.5) }, 0, "invalid_value"},
		{"negative int", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "c").AppendEmpty().SetIntValue(-3) }, 0, "invalid_value"},
		{"zero", func(sm pmetric.ScopeMetrics) { deltaSum(sm, "c").AppendEmpty().SetIntValue(0) }, 1, ""},
		{"negative non-monotonic", func(sm pmetric.ScopeMetrics) {
			dps := deltaSum(sm, "c")
			sm.Metrics().At(0).Sum().SetIsMonotonic(false)
			dps.AppendEmpty().SetIntValue(-3)
		}, 1, ""},
		{"NaN gauge is kept", func(sm pmetric.ScopeMetrics) {
			m := sm.Metrics().AppendEmpty()
			m.SetName("g")
			m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(math.NaN())
		}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, tt, _ := newTestSampler(t, testConfig())
			md, _, sm := newMetrics()
			tc.build(sm)
			out, err := s.processMetrics(context.Background(), stamped(md))
			if tc.kept == 0 {
				require.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)
				assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_dropped_items", sigMetrics, reason(tc.reason)))
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.kept, out.DataPointCount())
		})
	}
}

func TestMetricsAttributeLimits(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	md, _, sm := newMetrics()
	dp := deltaSum(sm, "c").AppendEmpty()
	dp.SetIntValue(1)
	for i := range 40 {
		dp.Attributes().PutStr(fmt.Sprintf("k%02d", i), "v")
	}
	dp.Attributes().PutStr("long", strings.Repeat("é", 200)) // 400 bytes, 41st attribute
	dp2 := sm.Metrics().At(0).Sum().DataPoints().AppendEmpty()
	dp2.SetIntValue(1)
	dp2.Attributes().PutStr("long", strings.Repeat("x", 300))
	dp2.Attributes().PutEmptyBytes("raw").FromRaw(make([]byte, 1000))

	_, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	attrs := dp.Attributes()
	assert.Equal(t, 32, attrs.Len())
	_, ok := attrs.Get("k31")
	assert.True(t, ok)
	_, ok = attrs.Get("k32")
	assert.False(t, ok)
	v, _ := dp2.Attributes().Get("long")
	assert.Len(t, v.Str(), 256)
	raw, _ := dp2.Attributes().Get("raw")
	assert.Equal(t, 256, raw.Bytes().Len())
	assert.Equal(t, int64(9), counter(t, tt, "processor_sampler_removed_attributes", reason("count_limit")))
	assert.Equal(t, int64(2), counter(t, tt, "processor_sampler_truncated_values", reason("value_length")))
}

func TestMetricsScrubAndHash(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	md, rm, sm := newMetrics()
	rm.Resource().Attributes().PutStr("deployment.owner", "ops-lead@example.com")
	rm.Resource().Attributes().PutStr("db.password", "hunter2")
	dp := deltaSum(sm, "checkout.completed").AppendEmpty()
	dp.SetIntValue(1)
	dp.Attributes().PutStr("user.id", "u-12345")
	dp.Attributes().PutInt("enduser.id", 987)
	dp.Attributes().PutStr("http.route", "/pay")
	dp.Attributes().PutStr("http.request.header.authorization", "Basic dXNlcjpwYXNz")
	dp.Attributes().PutStr("note", "card 4111-1111-1111-1111 via Bearer abcdefghijklmnopqrstuv")

	_, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	res := rm.Resource().Attributes().AsRaw()
	assert.Equal(t, map[string]any{"service.name": "checkout", "deployment.owner": "[REDACTED:email]"}, res)
	assert.Equal(t, map[string]any{
		"user.id":    expectedHash(testKey, "u-12345", 32),
		"enduser.id": expectedHash(testKey, "987", 32),
		"http.route": "/pay",
		"note":       "card [REDACTED:card] via Bearer [REDACTED:token]",
	}, dp.Attributes().AsRaw())
	assert.Equal(t, int64(2), counter(t, tt, "processor_sampler_removed_attributes", reason("deny_list")))
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_redacted_values", reason("email")))
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_redacted_values", reason("card")))
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_redacted_values", reason("token")))
	metadatatest.AssertEqualProcessorSamplerHashedValues(t, tt, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
}

func TestMetricsAllowMode(t *testing.T) {
	cfg := testConfig()
	cfg.Scrub.Mode = ScrubModeAllow
	cfg.Scrub.AllowKeys = []string{"service.name", "http.*"}
	s, tt, _ := newTestSampler(t, cfg)
	md, rm, sm := newMetrics()
	rm.Resource().Attributes().PutStr("host.name", "web-1")
	dp := deltaSum(sm, "c").AppendEmpty()
	dp.Attributes().PutStr("http.route", "/a")
	dp.Attributes().PutStr("user.id", "u1")
	dp.Attributes().PutStr("tenant", "acme")
	dp.Attributes().PutDouble(adjustedCountKey, 4)
	_, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"service.name": "checkout"}, rm.Resource().Attributes().AsRaw())
	assert.Equal(t, map[string]any{"http.route": "/a", "user.id": expectedHash(testKey, "u1", 32), adjustedCountKey: 4.0}, dp.Attributes().AsRaw())
	assert.Equal(t, int64(2), counter(t, tt, "processor_sampler_removed_attributes", reason("not_allowed")))
}

func TestMetricsStagesOff(t *testing.T) {
	cfg := testConfig()
	cfg.Validation.Enabled = false
	cfg.Scrub.Enabled = false
	cfg.Hashing.Enabled = false
	cfg.Cardinality.Enabled = false
	s, _, _ := newTestSampler(t, cfg)
	md, _, sm := newMetrics()
	dp := deltaSum(sm, "1 bad name").AppendEmpty()
	dp.SetDoubleValue(-1)
	dp.Attributes().PutStr("password", "x")
	dp.Attributes().PutStr("user.id", "u1")
	dp.Attributes().PutStr("email", "a@b.io "+strings.Repeat("x", 500))
	want := pmetric.NewMetrics()
	md.CopyTo(want)
	out, err := s.processMetrics(context.Background(), md) // no timestamp: not validated either
	require.NoError(t, err)
	assert.Equal(t, want, out)
}

// TestOverflowExactTotals floods one delta counter with 100k unique attribute values: 1000 series
// keep their own point, the rest fold into one overflow point, the total is exact and the tracker
// holds at most max_series hashes.
func TestOverflowExactTotals(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	const unique = 100_000
	const batches = 10
	var total int64
	perSeries := map[string]int64{}
	var overflowTotal int64
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b := range batches {
		md, _, sm := newMetrics()
		dps := deltaSum(sm, "requests")
		for i := range unique / batches {
			dp := dps.AppendEmpty()
			v := int64(i%7 + 1)
			dp.SetIntValue(v)
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(testNow))
			dp.SetTimestamp(pcommon.NewTimestampFromTime(testNow.Add(time.Second)))
			dp.Attributes().PutStr("request.id", fmt.Sprintf("r-%d-%d", b, i))
			total += v
		}
		out, err := s.processMetrics(context.Background(), stamped(md))
		require.NoError(t, err)
		pts := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
		overflowPoints := 0
		for i := 0; i < pts.Len(); i++ {
			dp := pts.At(i)
			if v, ok := dp.Attributes().Get(overflowKey); ok {
				require.True(t, v.Bool())
				require.Equal(t, 1, dp.Attributes().Len(), "the overflow series has no other attributes")
				overflowTotal += dp.IntValue()
				overflowPoints++
				continue
			}
			id, _ := dp.Attributes().Get("request.id")
			perSeries[id.Str()] += dp.IntValue()
		}
		if b == 0 {
			assert.Equal(t, 1001, pts.Len())
		} else {
			assert.Equal(t, 1, pts.Len())
		}
		assert.Equal(t, 1, overflowPoints, "one overflow point per metric and batch")
	}
	var sum int64
	for _, v := range perSeries {
		sum += v
	}
	assert.Len(t, perSeries, 1000)
	assert.Equal(t, total, sum+overflowTotal, "totals stay exact")
	metadatatest.AssertEqualProcessorSamplerOverflowPoints(t, tt, []metricdata.DataPoint[int64]{{Value: unique - 1000}}, metricdatatest.IgnoreTimestamp())

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, growth, int64(8<<20), "retained heap after 100k unique series")
}

func TestOverflowNonAdditiveDropped(t *testing.T) {
	cfg := testConfig()
	cfg.Cardinality.MaxSeries = 2
	s, tt, _ := newTestSampler(t, cfg)
	md, _, sm := newMetrics()
	g := sm.Metrics().AppendEmpty()
	g.SetName("queue.depth")
	gdps := g.SetEmptyGauge().DataPoints()
	c := sm.Metrics().AppendEmpty()
	c.SetName("bytes.total")
	cs := c.SetEmptySum()
	cs.SetIsMonotonic(true)
	cs.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 5 {
		gdps.AppendEmpty().Attributes().PutInt("queue", int64(i))
		cs.DataPoints().AppendEmpty().Attributes().PutInt("conn", int64(i))
	}
	_, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	assert.Equal(t, 2, gdps.Len())
	assert.Equal(t, 2, cs.DataPoints().Len())
	assert.Equal(t, int64(6), counter(t, tt, "processor_sampler_dropped_items", sigMetrics, reason("cardinality_limit")))
}

func TestOverflowHistogramMerge(t *testing.T) {
	cfg := testConfig()
	cfg.Cardinality.MaxSeries = 1
	s, _, _ := newTestSampler(t, cfg)
	md, _, sm := newMetrics()
	m := sm.Metrics().AppendEmpty()
	m.SetName("latency")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range 4 {
		dp := h.DataPoints().AppendEmpty()
		dp.Attributes().PutInt("i", int64(i))
		dp.ExplicitBounds().FromRaw([]float64{10, 100})
		dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
		dp.SetCount(6)
		dp.SetSum(float64(100 * (i + 1)))
		dp.SetMin(float64(i + 1))
		dp.SetMax(float64(200 + i))
	}
	_, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	require.Equal(t, 2, h.DataPoints().Len())
	ovf := h.DataPoints().At(1)
	assert.Equal(t, map[string]any{overflowKey: true}, ovf.Attributes().AsRaw())
	assert.Equal(t, []uint64{3, 6, 9}, ovf.BucketCounts().AsRaw())
	assert.Equal(t, uint64(18), ovf.Count())
	assert.Equal(t, 900.0, ovf.Sum())
	assert.Equal(t, 2.0, ovf.Min())
	assert.Equal(t, 203.0, ovf.Max())
}

func TestCardinalityWindowAndLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Cardinality.MaxSeries = 3
	cfg.Cardinality.MaxMetrics = 2
	cfg.Cardinality.MaxTrackedSeries = 5
	s, _, clock := newTestSampler(t, cfg)
	run := func(name string, from, to int) (own, overflow int) {
		md, _, sm := newMetrics()
		dps := deltaSum(sm, name)
		for i := from; i < to; i++ {
			dp := dps.AppendEmpty()
			dp.SetIntValue(1)
			dp.Attributes().PutInt("i", int64(i))
		}
		_, err := s.processMetrics(context.Background(), stamped(md))
		require.NoError(t, err)
		for i := 0; i < dps.Len(); i++ {
			if _, ok := dps.At(i).Attributes().Get(overflowKey); ok {
				overflow++
			} else {
				own++
			}
		}
		return own, overflow
	}
	own, ovf := run("a", 0, 5)
	assert.Equal(t, 3, own)
	assert.Equal(t, 1, ovf)
	own, _ = run("a", 0, 3) // the same series stay admitted
	assert.Equal(t, 3, own)
	own, _ = run("b", 0, 5) // only 2 more fit in max_tracked_series
	assert.Equal(t, 2, own)
	own, ovf = run("c", 0, 2) // max_metrics reached: all points overflow
	assert.Equal(t, 0, own)
	assert.Equal(t, 1, ovf)

	clock.Advance(time.Hour) // a new window forgets everything
	own, _ = run("c", 0, 3)
	assert.Equal(t, 3, own)
}

func TestAttrSetHashOrderIndependent(t *testing.T) {
	a, b := pcommon.NewMap(), pcommon.NewMap()
	a.PutStr("x", "1")
	a.PutInt("y", 2)
	b.PutInt("y", 2)
	b.PutStr("x", "1")
	sum := attrSetHash
	assert.Equal(t, sum(a), sum(b))
	b.PutStr("x", "2")
	assert.NotEqual(t, sum(a), sum(b))
	c := pcommon.NewMap()
	c.PutStr("x", "2") // the int 2 and the string "2" differ
	d := pcommon.NewMap()
	d.PutInt("x", 2)
	assert.NotEqual(t, sum(c), sum(d))
}

func TestMetricSampling(t *testing.T) {
	cfg := testConfig()
	cfg.Cardinality.Enabled = false
	cfg.Sampling.Metrics.Enabled = true
	cfg.Sampling.Metrics.Rules = []SamplingRule{{Name: "requests", Probability: 0.1}, {Name: "latency", Probability: 0.1}}
	s, tt, _ := newTestSampler(t, cfg)
	md, _, sm := newMetrics()
	const n = 50_000
	reqs := deltaSum(sm, "requests")
	other := deltaSum(sm, "other")
	gm := sm.Metrics().AppendEmpty()
	gm.SetName("requests") // a gauge with a sampled name is never sampled
	gauge := gm.SetEmptyGauge().DataPoints()
	hm := sm.Metrics().AppendEmpty()
	hm.SetName("latency")
	hist := hm.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	var truth, truthD float64
	for i := range n {
		v := int64(i%5 + 1)
		reqs.AppendEmpty().SetIntValue(v)
		truth += float64(v)
		d := reqs.AppendEmpty()
		d.SetDoubleValue(float64(v) / 4)
		truthD += float64(v) / 4
		other.AppendEmpty().SetIntValue(v)
		gauge.AppendEmpty().SetIntValue(v)
		h := hist.DataPoints().AppendEmpty()
		h.ExplicitBounds().FromRaw([]float64{1})
		h.BucketCounts().FromRaw([]uint64{uint64(v), 1})
		h.SetCount(uint64(v) + 1)
		h.SetSum(float64(v))
	}
	_, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	var estI, estD float64
	for i := 0; i < reqs.Len(); i++ {
		if reqs.At(i).ValueType() == pmetric.NumberDataPointValueTypeInt {
			estI += float64(reqs.At(i).IntValue())
		} else {
			estD += reqs.At(i).DoubleValue()
		}
	}
	assert.InDelta(t, truth, estI, truth*0.05)
	assert.InDelta(t, truthD, estD, truthD*0.05)
	assert.InDelta(t, 2*n*0.1, reqs.Len(), 2*n*0.1*0.05)
	assert.Equal(t, n, other.Len())
	assert.Equal(t, n, gauge.Len())
	var count, b0 uint64
	var hsum float64
	for i := 0; i < hist.DataPoints().Len(); i++ {
		h := hist.DataPoints().At(i)
		require.Equal(t, h.BucketCounts().At(0)+h.BucketCounts().At(1), h.Count())
		count += h.Count()
		b0 += h.BucketCounts().At(0)
		hsum += h.Sum()
	}
	assert.InDelta(t, truth+n, float64(count), (truth+n)*0.05)
	assert.InDelta(t, truth, float64(b0), truth*0.05)
	assert.InDelta(t, truth, hsum, truth*0.05)
	dropped := 3*n - reqs.Len() - hist.DataPoints().Len()
	assert.Equal(t, int64(dropped), counter(t, tt, "processor_sampler_sampled_out_items", sigMetrics))
}

// TestConcurrentBatches runs batches from several goroutines through one processor (run it with -race).
func TestConcurrentBatches(t *testing.T) {
	cfg := testConfig()
	cfg.Cardinality.MaxSeries = 50
	s, _, clock := newTestSampler(t, cfg)
	done := make(chan int64)
	for g := range 4 {
		go func() {
			var total int64
			for b := range 20 {
				if b == 10 && g == 0 {
					clock.Advance(time.Hour)
				}
				md, _, sm := newMetrics()
				dps := deltaSum(sm, "requests")
				for i := range 40 {
					dp := dps.AppendEmpty()
					dp.SetIntValue(1)
					dp.Attributes().PutStr(fmt.Sprintf("key%d", i%3), fmt.Sprintf("v-%d-%d", g, i))
					dp.Attributes().PutStr("user.id", "u")
				}
				out, err := s.processMetrics(context.Background(), stamped(md))
				if err != nil {
					done <- -1
					return
				}
				pts := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
				for i := 0; i < pts.Len(); i++ {
					total += pts.At(i).IntValue()
				}
			}
			done <- total
		}()
	}
	for range 4 {
		assert.Equal(t, int64(20*40), <-done, "every batch keeps its exact total")
	}
}

// TestSignsOfLifePassUnchanged: a resource without scope metrics and a track heartbeat (one delta
// sum point of 0) pass every stage unchanged, also when metric sampling would keep almost nothing,
// so a source that counts nothing still reaches the exporter.
func TestSignsOfLifePassUnchanged(t *testing.T) {
	const n = 1000
	build := func() pmetric.Metrics {
		md := pmetric.NewMetrics()
		for i := range n {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr(conventions.ServiceName, "idle")
			rm.Resource().Attributes().PutStr(conventions.ServiceInstanceID, fmt.Sprint(i))
			if i%2 == 0 {
				continue // the resource alone
			}
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("github.com/trackhq/track")
			dp := deltaSum(sm, conventions.Heartbeat).AppendEmpty()
			dp.SetIntValue(0)
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(testNow.Add(-10 * time.Second)))
			dp.SetTimestamp(pcommon.NewTimestampFromTime(testNow))
		}
		return md
	}
	for _, c := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"defaults", func(*Config) {}},
		{"sampling every metric at 1%", func(cfg *Config) {
			cfg.Sampling.Metrics.Enabled = true
			cfg.Sampling.Metrics.Probability = 0.01
			cfg.Sampling.Metrics.Rules = []SamplingRule{{Name: "track.*", Probability: 0.01}}
		}},
		{"cardinality capped at 1 series", func(cfg *Config) { cfg.Cardinality.MaxSeries = 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.cfg(cfg)
			s, tt, _ := newTestSampler(t, cfg)
			out, err := s.processMetrics(context.Background(), build())
			require.NoError(t, err)
			assert.Equal(t, build(), out)
			assert.Zero(t, counter(t, tt, "processor_sampler_sampled_out_items", sigMetrics))

			// A batch of resources alone is passed on, not skipped.
			md := pmetric.NewMetrics()
			md.ResourceMetrics().AppendEmpty().Resource().Attributes().PutStr(conventions.ServiceName, "idle")
			want := pmetric.NewMetrics()
			md.CopyTo(want)
			out, err = s.processMetrics(context.Background(), md)
			require.NoError(t, err)
			assert.Equal(t, want, out)
		})
	}
}
