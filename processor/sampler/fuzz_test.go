package sampler

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var fuzzStrings = []string{
	"",
	"plain value",
	"alice@example.com",
	"a@b@c.de@@x.io",
	"4111 1111 1111 1111",
	"4111-1111-1111-1111-4111-1111-1111-1111",
	strings.Repeat("4", 40),
	strings.Repeat("1 ", 60),
	"Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123==",
	"bearer\t\t" + strings.Repeat("x", 20),
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
	"eyJ.eyJ.",
	"10.0.0.1:8080 fe80::1 ::ffff:1.2.3.4 1:2:3:4:5:6:7:8 :::: 1.2.3.4.5",
	"panic: boom\n\tat x.y(Z.java:1)\nuser=bob@example.org card=5555555555554444",
	"\xff\xfe@\x00.com",
	"é@é.éé 4111\u00a01111",
	"k\x00ey",
	"a\x00b",
	"caf\xc3",
	"order 4111111111111111000000",
	strings.Repeat("\x00", 300),
	strings.Repeat("é", 150),
}

// fuzzConfig is the configuration the payload fuzz targets run: small bounds, so that cuts are
// exercised, and every pattern on.
func fuzzConfig() *Config {
	cfg := testConfig()
	cfg.Validation.MaxValueLength = 24
	cfg.Validation.MaxLongValueLength = 40
	cfg.Validation.LongValueKeys = []string{"exception.stacktrace", "v"}
	cfg.Scrub.Patterns.IP = true
	cfg.Scrub.CustomPatterns = []CustomPattern{{Name: "order", Regex: `ORD-\d+`}}
	return cfg
}

// droppedTotal sums the processor's dropped_items counter over every reason for one signal.
func droppedTotal(t *testing.T, tt *componenttest.Telemetry, sig tally.Signal) int {
	sigAttr := sigMetrics
	if sig == tally.SignalLogs {
		sigAttr = sigLogs
	}
	n := int64(0)
	for _, r := range tally.DropReasonNames {
		n += counter(t, tt, "processor_sampler_dropped_items", sigAttr, reason(r))
	}
	return int(n)
}

// fuzzSampler is a sampler under test with its configuration and telemetry.
type fuzzSampler struct {
	*sampler
	cfg *Config
	tt  *componenttest.Telemetry
}

func fuzzScrubber(t *testing.T) fuzzSampler {
	cfg := fuzzConfig()
	s, tt, _ := newTestSampler(t, cfg)
	return fuzzSampler{s, cfg, tt}
}

// FuzzLogRecord feeds arbitrary attribute values, bodies and event names through the logs pipeline.
func FuzzLogRecord(f *testing.F) {
	for i, s := range fuzzStrings {
		f.Add(s, fuzzStrings[(i+3)%len(fuzzStrings)], "click", int64(i))
	}
	f.Fuzz(func(t *testing.T, attr, body, name string, n int64) {
		s := fuzzScrubber(t)
		ld, _, lrs := newLogs()
		lr := event(lrs, name, testNow)
		lr.Attributes().PutStr("note", attr)
		lr.Attributes().PutStr("user.id", attr)
		lr.Attributes().PutInt("n", n)
		lr.Attributes().PutStr(attr, body)
		lr.Body().SetStr(body)
		m := event(lrs, "structured", testNow).Body().SetEmptyMap()
		m.PutStr(attr, body)
		m.PutEmptySlice("list").AppendEmpty().SetStr(attr)
		m.PutEmptyMap(attr).PutStr(name, body) // a nested key read joined to its parent (location)
		m.PutInt("n", n)
		in := ld.LogRecordCount()
		out, _ := s.processLogs(context.Background(), ld)
		newOutputCheck(t, s.cfg).logs(out, true)
		require.Equal(t, in, out.LogRecordCount()+droppedTotal(t, s.tt, tally.SignalLogs))
	})
}

// FuzzMetricsPayload unmarshals arbitrary OTLP metrics and runs them through the processor. Beyond
// not panicking, the output must be storable (outputCheck), must marshal, and every point must be
// accounted for: points in = points out + points dropped (by reason) + points sampled out + points
// folded into an overflow point.
func FuzzMetricsPayload(f *testing.F) {
	var m pmetric.ProtoMarshaler
	for _, md := range seedMetrics() {
		b, err := m.MarshalMetrics(md)
		require.NoError(f, err)
		f.Add(b)
		if bytes.Contains(b, []byte("dup2")) {
			f.Add(bytes.ReplaceAll(b, []byte("dup2"), []byte("dup1"))) // keys repeated on the wire
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u pmetric.ProtoUnmarshaler
		md, err := u.UnmarshalMetrics(data)
		if err != nil {
			return
		}
		// Points that arrive labelled as overflow would be indistinguishable from the ones the
		// cap relabels: take the label off first.
		forEachAttrs(md, func(a pcommon.Map) { a.RemoveIf(func(k string, _ pcommon.Value) bool { return k == overflowKey }) })
		cfg := fuzzConfig()
		cfg.Cardinality.MaxSeries = 2
		cfg.Sampling.Metrics.Enabled = true
		cfg.Sampling.Metrics.Probability = 0.5
		s, tt, _ := newTestSampler(t, cfg)
		in := md.DataPointCount()
		out, _ := s.processMetrics(context.Background(), md)
		newOutputCheck(t, cfg).metrics(out)
		keptOverflow := 0
		forEachAttrs(out, func(a pcommon.Map) {
			if v, ok := a.Get(overflowKey); ok && a.Len() == 1 && v.Type() == pcommon.ValueTypeBool {
				keptOverflow++
			}
		})
		folded := int(counter(t, tt, "processor_sampler_overflow_points")) - keptOverflow
		sampled := int(counter(t, tt, "processor_sampler_sampled_out_items", sigMetrics))
		require.Equal(t, in, out.DataPointCount()+droppedTotal(t, tt, tally.SignalMetrics)+sampled+folded,
			"points in = out + dropped + sampled out + folded")
		_, err = m.MarshalMetrics(out)
		require.NoError(t, err)
	})
}

// forEachAttrs calls f with the attributes of every data point of md.
func forEachAttrs(md pmetric.Metrics, f func(pcommon.Map)) {
	forEachPoint(md, func(p timed) {
		f(p.(interface{ Attributes() pcommon.Map }).Attributes())
	})
}

// FuzzLogsPayload unmarshals arbitrary OTLP logs and runs them through the processor. The output
// must be storable and marshal, and records in = records out + dropped + sampled out.
func FuzzLogsPayload(f *testing.F) {
	var m plog.ProtoMarshaler
	for _, ld := range seedLogs() {
		b, err := m.MarshalLogs(ld)
		require.NoError(f, err)
		f.Add(b)
		if bytes.Contains(b, []byte("dup2")) {
			f.Add(bytes.ReplaceAll(b, []byte("dup2"), []byte("dup1")))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u plog.ProtoUnmarshaler
		ld, err := u.UnmarshalLogs(data)
		if err != nil {
			return
		}
		cfg := fuzzConfig()
		cfg.Validation.RequireEventName = false
		cfg.Validation.MaxAge = 0
		cfg.Sampling.Logs.Probability = 0.5
		s, tt, _ := newTestSampler(t, cfg)
		in := ld.LogRecordCount()
		out, _ := s.processLogs(context.Background(), ld)
		newOutputCheck(t, cfg).logs(out, true)
		sampled := int(counter(t, tt, "processor_sampler_sampled_out_items", sigLogs))
		require.Equal(t, in, out.LogRecordCount()+droppedTotal(t, tt, tally.SignalLogs)+sampled,
			"records in = out + dropped + sampled out")
		_, err = m.MarshalLogs(out)
		require.NoError(t, err)
	})
}

func seedMetrics() []pmetric.Metrics {
	var seeds []pmetric.Metrics
	for i, str := range fuzzStrings {
		md, rm, sm := newMetrics()
		rm.Resource().Attributes().PutStr("host.owner", str)
		dps := deltaSum(sm, "requests")
		for j := range 4 {
			dp := dps.AppendEmpty()
			dp.SetIntValue(int64(j - 1))
			dp.Attributes().PutStr("v", str)
			dp.Attributes().PutInt("j", int64(j))
			dp.Attributes().PutStr("user.id", str)
		}
		sm.Metrics().At(0).SetDescription(str)
		hostile := dps.AppendEmpty()
		hostile.SetIntValue(1)
		ha := hostile.Attributes()
		ha.PutStr("dup1", str)
		ha.PutStr(str, "v")
		ha.PutStr("dup2", "other")
		ha.PutInt("n", []int64{4111111111111111, -5555555555554444, 1700000000004, 42}[i%4])
		ha.PutDouble("d", []float64{4111111111111111, 0.5, math.NaN(), 1e300}[i%4])
		ha.PutEmptyBytes("b").FromRaw([]byte(str))
		nested := ha.PutEmptyMap("m")
		nested.PutStr(str, str)
		nested.PutEmptySlice("s").AppendEmpty().SetInt(4111111111111111)
		if i%3 == 0 {
			deep(ha.PutEmpty("deep"), validate.MaxDepth+2)
		}
		hostile.Exemplars().AppendEmpty().FilteredAttributes().PutStr(str, str)
		d := dps.AppendEmpty()
		d.SetDoubleValue([]float64{math.NaN(), math.Inf(1), -1, 0.5}[i%4])
		g := sm.Metrics().AppendEmpty()
		g.SetName(str)
		g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(1)
		h := sm.Metrics().AppendEmpty()
		h.SetName("latency")
		hh := h.SetEmptyHistogram()
		hh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		for j := range 3 {
			hp := hh.DataPoints().AppendEmpty()
			hp.Attributes().PutInt("j", int64(j))
			hp.ExplicitBounds().FromRaw([]float64{1, 2})
			hp.BucketCounts().FromRaw([]uint64{1, 2, uint64(j)})
			hp.SetCount(uint64(3 + j))
		}
		e := sm.Metrics().AppendEmpty()
		e.SetName("exp")
		ep := e.SetEmptyExponentialHistogram()
		ep.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		for j := range 3 {
			ep.DataPoints().AppendEmpty().Attributes().PutInt("j", int64(j))
		}
		su := sm.Metrics().AppendEmpty()
		su.SetName("summary")
		sps := su.SetEmptySummary().DataPoints()
		for j := range 3 {
			sps.AppendEmpty().Attributes().PutInt("j", int64(j))
		}
		stamped(md)
		switch i % 4 { // odd timestamps on the last sum point
		case 1:
			hostile.SetTimestamp(0)
		case 2:
			hostile.SetTimestamp(1 << 63)
		case 3:
			hostile.SetTimestamp(pcommon.NewTimestampFromTime(testNow.Add(2 * time.Hour)))
		}
		seeds = append(seeds, md)
	}
	return seeds
}

func seedLogs() []plog.Logs {
	var seeds []plog.Logs
	for i, str := range fuzzStrings {
		ld, rl, lrs := newLogs()
		rl.Resource().Attributes().PutStr("owner", str)
		lr := event(lrs, str, testNow)
		lr.Body().SetStr(str)
		lr.Attributes().PutStr("user.id", str)
		lr.Attributes().PutEmptyBytes("raw").FromRaw([]byte(str))
		lr.SetTraceID(pcommon.TraceID{byte(i)})
		lr.Attributes().PutStr("dup1", str)
		lr.Attributes().PutStr("dup2", "other")
		lr.Attributes().PutInt("n", []int64{4111111111111111, 1700000000004, 42}[i%3])
		lr.Attributes().PutStr("exception.stacktrace", strings.Repeat(str, 4))
		lr.SetSeverityText(str)
		mb := event(lrs, "m", testNow).Body().SetEmptyMap()
		mb.PutStr("email", str)
		mb.PutEmptyMap("inner").PutStr("x", str)
		mb.PutStr(str, str)
		mb.PutDouble("amount", 4111111111111111)
		sb := event(lrs, "s", testNow).Body().SetEmptySlice()
		sb.AppendEmpty().SetStr(str)
		deep(sb.AppendEmpty(), validate.MaxDepth+i%3)
		odd := event(lrs, "odd", testNow)
		odd.SetTimestamp([]pcommon.Timestamp{0, 1 << 63, pcommon.NewTimestampFromTime(testNow.Add(2 * time.Hour))}[i%3])
		seeds = append(seeds, ld)
	}
	return seeds
}

// TestFuzzSeedsReachTheirCases checks that the seeds hold what they are built to exercise: every
// kind of metric with several points (summaries too), and each odd timestamp.
func TestFuzzSeedsReachTheirCases(t *testing.T) {
	for _, md := range seedMetrics() {
		perType := map[pmetric.MetricType]int{}
		ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
		for i := 0; i < ms.Len(); i++ {
			perType[ms.At(i).Type()] += pointCount(ms.At(i))
		}
		assert.Equal(t, 3, perType[pmetric.MetricTypeSummary], "summary points")
		assert.Equal(t, 3, perType[pmetric.MetricTypeExponentialHistogram], "exponential histogram points")
		assert.Equal(t, 3, perType[pmetric.MetricTypeHistogram], "histogram points")
		assert.Equal(t, 1, perType[pmetric.MetricTypeGauge], "gauge points")
	}
}
