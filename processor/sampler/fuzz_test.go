package sampler

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
}

func fuzzScrubber(t *testing.T) *sampler {
	cfg := testConfig()
	cfg.Scrub.Patterns.IP = true
	cfg.Scrub.CustomPatterns = []CustomPattern{{Name: "order", Regex: `ORD-\d+`}}
	s, _, _ := newTestSampler(t, cfg)
	return s
}

// FuzzScrubString checks that scrubbing never panics and that its output is a fixed point: nothing
// left in it matches a pattern.
func FuzzScrubString(f *testing.F) {
	for _, s := range fuzzStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc := &scrubber{email: true, card: true, token: true, ip: true}
		var c counts
		out, _ := sc.scrubString(in, &c)
		again, changed := sc.scrubString(out, &c)
		require.False(t, changed, "second pass changed %q into %q", out, again)
	})
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
		_, _ = s.processLogs(context.Background(), ld)
	})
}

// FuzzMetricsPayload unmarshals arbitrary OTLP metrics and runs them through the processor.
func FuzzMetricsPayload(f *testing.F) {
	var m pmetric.ProtoMarshaler
	for _, md := range seedMetrics() {
		b, err := m.MarshalMetrics(md)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u pmetric.ProtoUnmarshaler
		md, err := u.UnmarshalMetrics(data)
		if err != nil {
			return
		}
		cfg := testConfig()
		cfg.Cardinality.MaxSeries = 2
		cfg.Sampling.Metrics.Enabled = true
		cfg.Sampling.Metrics.Probability = 0.5
		s, _, _ := newTestSampler(t, cfg)
		out, _ := s.processMetrics(context.Background(), md)
		_, err = m.MarshalMetrics(out)
		require.NoError(t, err)
	})
}

// FuzzLogsPayload unmarshals arbitrary OTLP logs and runs them through the processor.
func FuzzLogsPayload(f *testing.F) {
	var m plog.ProtoMarshaler
	for _, ld := range seedLogs() {
		b, err := m.MarshalLogs(ld)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u plog.ProtoUnmarshaler
		ld, err := u.UnmarshalLogs(data)
		if err != nil {
			return
		}
		cfg := testConfig()
		cfg.Validation.RequireEventName = false
		cfg.Validation.MaxAge = 0
		cfg.Sampling.Logs.Probability = 0.5
		s, _, _ := newTestSampler(t, cfg)
		out, _ := s.processLogs(context.Background(), ld)
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
		for j := range 3 {
			su.SetEmptySummary().DataPoints().AppendEmpty().Attributes().PutInt("j", int64(j))
		}
		seeds = append(seeds, stamped(md))
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
		mb := event(lrs, "m", testNow).Body().SetEmptyMap()
		mb.PutStr("email", str)
		mb.PutEmptyMap("inner").PutStr("x", str)
		seeds = append(seeds, ld)
	}
	return seeds
}
