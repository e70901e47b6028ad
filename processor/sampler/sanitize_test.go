package sampler

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/processor/sampler/internal/metadatatest"
	"github.com/trackhq/track/processor/sampler/internal/scrub"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// ---- the properties every output must have ----

// outputCheck asserts the properties of the processor's output: every string is valid UTF-8
// without NUL, keys are unique and within validate.MaxKeyLen, values within their bounds, maps and slices
// nested less than validate.MaxDepth deep, event names within validate.MaxEventNameLen, and no value of any type
// (outside the hashed identifiers) holds a card number.
type outputCheck struct {
	t         testing.TB
	maxValue  int // top-level attribute values
	maxLong   int // top-level values of long_value_keys
	longKeys  map[string]bool
	hashKeys  map[string]bool
	hashLen   int  // hashed identifiers are as long as hashing.length
	pii       bool // scrubbing with the card pattern is on
	bodiesPII bool // bodies are scrubbed
}

func newOutputCheck(t testing.TB, cfg *Config) *outputCheck {
	oc := &outputCheck{
		t:         t,
		maxValue:  validate.BoundLen(cfg.Validation.MaxValueLength, validate.MaxIndexedValueLen),
		maxLong:   validate.BoundLen(cfg.Validation.MaxLongValueLength, validate.MaxFieldLen),
		longKeys:  map[string]bool{},
		hashKeys:  map[string]bool{},
		pii:       cfg.Scrub.Enabled && cfg.Scrub.Patterns.CardNumber,
		bodiesPII: cfg.Scrub.Enabled && cfg.Scrub.Patterns.CardNumber && cfg.Scrub.Bodies,
	}
	for _, k := range cfg.Validation.LongValueKeys {
		oc.longKeys[k] = true
	}
	if cfg.Hashing.Enabled {
		for _, k := range cfg.Hashing.Keys {
			oc.hashKeys[k] = true
		}
		oc.hashLen = cfg.Hashing.Length
	}
	return oc
}

func (oc *outputCheck) str(what, s string) {
	oc.t.Helper()
	require.True(oc.t, utf8.ValidString(s), "%s is not valid UTF-8: %q", what, s)
	require.Equal(oc.t, -1, strings.IndexByte(s, 0), "%s holds a NUL byte: %q", what, s)
}

func (oc *outputCheck) noCard(what, s string) {
	oc.t.Helper()
	_, n := scrub.RedactCards(s)
	require.Zero(oc.t, n, "%s holds a card number: %q", what, s)
}

// attrs checks a top-level attribute map; pii says whether its values must be free of card numbers.
func (oc *outputCheck) attrs(what string, m pcommon.Map, pii bool) {
	oc.t.Helper()
	oc.attrsWithin(what, m, pii, oc.maxValue)
}

// attrsWithin checks a top-level attribute map whose values are bounded by maxValue.
func (oc *outputCheck) attrsWithin(what string, m pcommon.Map, pii bool, maxValue int) {
	oc.t.Helper()
	oc.keys(what, m)
	m.Range(func(k string, v pcommon.Value) bool {
		maxLen := maxValue
		if oc.longKeys[k] {
			maxLen = oc.maxLong
		}
		if oc.hashKeys[k] {
			maxLen = max(maxLen, oc.hashLen)
		}
		oc.value(what+"."+k, v, maxLen, pii && !oc.hashKeys[k], 1)
		return true
	})
}

func (oc *outputCheck) keys(what string, m pcommon.Map) {
	oc.t.Helper()
	seen := map[string]bool{}
	m.Range(func(k string, _ pcommon.Value) bool {
		oc.str(what+" key", k)
		require.LessOrEqual(oc.t, len(k), validate.MaxKeyLen, "%s key %q", what, k)
		require.False(oc.t, seen[k], "%s repeats the key %q", what, k)
		seen[k] = true
		return true
	})
}

// value checks v, found at depth (an attribute value is at depth 1).
func (oc *outputCheck) value(what string, v pcommon.Value, maxLen int, pii bool, depth int) {
	oc.t.Helper()
	switch v.Type() {
	case pcommon.ValueTypeStr:
		oc.str(what, v.Str())
		require.LessOrEqual(oc.t, len(v.Str()), maxLen, what)
		if pii {
			oc.noCard(what, v.Str())
		}
	case pcommon.ValueTypeBytes:
		require.LessOrEqual(oc.t, v.Bytes().Len(), maxLen, what)
		if pii {
			oc.noCard(what, string(v.Bytes().AsRaw()))
		}
	case pcommon.ValueTypeInt:
		if pii {
			n := v.Int()
			u := uint64(n)
			if n < 0 {
				u = uint64(-(n + 1)) + 1
			}
			require.False(oc.t, scrub.IsCardNumber(u), "%s is the card number %d", what, n)
		}
	case pcommon.ValueTypeDouble:
		if d := math.Abs(v.Double()); pii && d < 1e19 && d == math.Trunc(d) {
			require.False(oc.t, scrub.IsCardNumber(uint64(d)), "%s is the card number %v", what, v.Double())
		}
	case pcommon.ValueTypeMap:
		require.Less(oc.t, depth, validate.MaxDepth, "%s is nested too deep", what)
		oc.keys(what, v.Map())
		v.Map().Range(func(k string, e pcommon.Value) bool {
			oc.value(what+"."+k, e, validate.MaxFieldLen, pii && !oc.hashKeys[k], depth+1)
			return true
		})
	case pcommon.ValueTypeSlice:
		require.Less(oc.t, depth, validate.MaxDepth, "%s is nested too deep", what)
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			oc.value(fmt.Sprintf("%s[%d]", what, i), sl.At(i), validate.MaxFieldLen, pii, depth+1)
		}
	}
}

func (oc *outputCheck) resource(res pcommon.Resource, url string) {
	oc.t.Helper()
	oc.str("resource schema url", url)
	oc.attrs("resource", res.Attributes(), oc.pii)
}

func (oc *outputCheck) scope(sc pcommon.InstrumentationScope, url string) {
	oc.t.Helper()
	oc.str("scope schema url", url)
	oc.str("scope name", sc.Name())
	oc.str("scope version", sc.Version())
	oc.attrs("scope", sc.Attributes(), oc.pii)
}

// metrics checks every string and value of md.
func (oc *outputCheck) metrics(md pmetric.Metrics) {
	oc.t.Helper()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		oc.resource(rms.At(i).Resource(), rms.At(i).SchemaUrl())
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			oc.scope(sms.At(j).Scope(), sms.At(j).SchemaUrl())
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				require.True(oc.t, conventions.ValidName(m.Name()), "metric name %q", m.Name())
				oc.str("description", m.Description())
				oc.str("unit", m.Unit())
				oc.points(m)
			}
		}
	}
}

func (oc *outputCheck) points(m pmetric.Metric) {
	oc.t.Helper()
	point := func(attrs pcommon.Map, exs pmetric.ExemplarSlice) {
		oc.attrs("point", attrs, oc.pii)
		for i := 0; i < exs.Len(); i++ {
			// Exemplars are made storable but neither scrubbed nor bounded by the configuration (a
			// documented limit).
			oc.attrsWithin("exemplar", exs.At(i).FilteredAttributes(), false, validate.MaxIndexedValueLen)
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeSum:
		for i := 0; i < m.Sum().DataPoints().Len(); i++ {
			dp := m.Sum().DataPoints().At(i)
			point(dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeGauge:
		for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
			dp := m.Gauge().DataPoints().At(i)
			point(dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeHistogram:
		for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
			dp := m.Histogram().DataPoints().At(i)
			point(dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for i := 0; i < m.ExponentialHistogram().DataPoints().Len(); i++ {
			dp := m.ExponentialHistogram().DataPoints().At(i)
			point(dp.Attributes(), dp.Exemplars())
		}
	case pmetric.MetricTypeSummary:
		for i := 0; i < m.Summary().DataPoints().Len(); i++ {
			point(m.Summary().DataPoints().At(i).Attributes(), pmetric.NewExemplarSlice())
		}
	}
}

// logs checks every string and value of ld. sampled says whether log sampling wrote
// sampling.adjusted_count: that weight is the processor's own product of checked numbers.
func (oc *outputCheck) logs(ld plog.Logs, sampled bool) {
	oc.t.Helper()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		oc.resource(rls.At(i).Resource(), rls.At(i).SchemaUrl())
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			oc.scope(sls.At(j).Scope(), sls.At(j).SchemaUrl())
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				oc.str("event name", lr.EventName())
				require.LessOrEqual(oc.t, len(lr.EventName()), validate.MaxEventNameLen)
				oc.str("severity text", lr.SeverityText())
				attrs := lr.Attributes()
				if sampled {
					attrs = pcommon.NewMap()
					lr.Attributes().CopyTo(attrs)
					attrs.Remove(adjustedCountKey)
				}
				oc.attrs("record", attrs, oc.pii)
				oc.value("body", lr.Body(), validate.MaxFieldLen, oc.bodiesPII, 0)
			}
		}
	}
}

// ---- repairs ----

// withDuplicateKeys returns a copy of md, through the wire format, in which every attribute key
// "dup2" became "dup1": pdata holds both, as it does for a request whose map repeats a key.
func withDuplicateKeys(t *testing.T, md pmetric.Metrics) pmetric.Metrics {
	var m pmetric.ProtoMarshaler
	b, err := m.MarshalMetrics(md)
	require.NoError(t, err)
	var u pmetric.ProtoUnmarshaler
	out, err := u.UnmarshalMetrics(bytes.ReplaceAll(b, []byte("dup2"), []byte("dup1")))
	require.NoError(t, err)
	return out
}

func withDuplicateLogKeys(t *testing.T, ld plog.Logs) plog.Logs {
	var m plog.ProtoMarshaler
	b, err := m.MarshalLogs(ld)
	require.NoError(t, err)
	var u plog.ProtoUnmarshaler
	out, err := u.UnmarshalLogs(bytes.ReplaceAll(b, []byte("dup2"), []byte("dup1")))
	require.NoError(t, err)
	return out
}

// deep returns a map value nested n maps deep, with a string at the bottom.
func deep(v pcommon.Value, n int) {
	m := v.SetEmptyMap()
	for range n - 1 {
		m = m.PutEmptyMap("d")
	}
	m.PutStr("leaf", "x")
}

// depthOf returns how many maps or slices deep v goes.
func depthOf(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		d := 0
		v.Map().Range(func(_ string, e pcommon.Value) bool {
			d = max(d, depthOf(e))
			return true
		})
		return d + 1
	case pcommon.ValueTypeSlice:
		d := 0
		for i := 0; i < v.Slice().Len(); i++ {
			d = max(d, depthOf(v.Slice().At(i)))
		}
		return d + 1
	}
	return 0
}

// TestHostileMetricPoints sends each hostile point next to a good one: the good point leaves the
// processor untouched, the hostile one repaired (or refused) and counted by reason, and the output
// has every storage property.
func TestHostileMetricPoints(t *testing.T) {
	tests := []struct {
		name    string
		build   func(t *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics
		counter string
		reason  string
		n       int64
		check   func(t *testing.T, attrs pcommon.Map)
	}{
		{"NUL in a value", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr("plan", "a\x00b")
			return md
		}, "repaired_values", "nul", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"plan": "a\uFFFDb"}, a.AsRaw())
		}},
		{"NUL in a key", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr("plan", "pro")
			dp.Attributes().PutStr("k\x00ey", "v")
			dp.Attributes().PutStr("tier", "gold")
			return md
		}, "repaired_values", "nul", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"plan": "pro", "k\uFFFDey": "v", "tier": "gold"}, a.AsRaw())
		}},
		{"a bad key mid-map: every value is processed once", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			a := dp.Attributes()
			a.PutStr("user.id", "u-1")
			a.PutStr("k\x00", "v")
			a.PutStr("note", "mail alice@example.com")
			a.PutStr("blob", strings.Repeat("y", 3000))
			a.PutStr("enduser.id", "u-2")
			return md
		}, "repaired_values", "nul", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{
				"user.id":    expectedHash(testKey, "u-1", 32),
				"note":       "mail [REDACTED:email]",
				"blob":       strings.Repeat("y", validate.MaxIndexedValueLen),
				"enduser.id": expectedHash(testKey, "u-2", 32),
				"k\uFFFD":    "v",
			}, a.AsRaw())
		}},
		{"invalid UTF-8 in a value", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr("plan", "pr\xffo")
			return md
		}, "repaired_values", "invalid_utf8", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"plan": "pr\uFFFDo"}, a.AsRaw())
		}},
		{"invalid UTF-8 in a key", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr("pl\xc3an", "pro")
			return md
		}, "repaired_values", "invalid_utf8", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"pl\uFFFDan": "pro"}, a.AsRaw())
		}},
		{"NUL deep in slices and maps", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			sl := dp.Attributes().PutEmptySlice("tags")
			sl.AppendEmpty().SetStr("a\x00")
			inner := sl.AppendEmpty().SetEmptyMap()
			inner.PutStr("x\x00", "y\x00")
			return md
		}, "repaired_values", "nul", 3, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"tags": []any{"a\uFFFD", map[string]any{"x\uFFFD": "y\uFFFD"}}}, a.AsRaw())
		}},
		{"bytes are binary and stay as they are", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutEmptyBytes("raw").FromRaw([]byte{0, 0xff, 1})
			return md
		}, "repaired_values", "nul", 0, func(t *testing.T, a pcommon.Map) {
			v, _ := a.Get("raw")
			assert.Equal(t, []byte{0, 0xff, 1}, v.Bytes().AsRaw())
		}},
		{"service.name with NUL", func(_ *testing.T, md pmetric.Metrics, _ pmetric.NumberDataPoint) pmetric.Metrics {
			md.ResourceMetrics().At(0).Resource().Attributes().PutStr("service.name", "check\x00out")
			return md
		}, "repaired_values", "nul", 1, func(t *testing.T, _ pcommon.Map) {}},
		{"key past 256 bytes", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr(strings.Repeat("k", 300), "v")
			return md
		}, "truncated_values", "key_length", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{strings.Repeat("k", 256): "v"}, a.AsRaw())
		}},
		{"nesting past the depth bound", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			deep(dp.Attributes().PutEmpty("doc"), 40)
			return md
		}, "truncated_values", "nesting_depth", 1, func(t *testing.T, a pcommon.Map) {
			v, _ := a.Get("doc")
			assert.Equal(t, validate.MaxDepth-1, depthOf(v), "the value at depth 1 holds maps down to depth %d", validate.MaxDepth-1)
		}},
		{"duplicate keys: the first is kept", func(t *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr("dup1", "first")
			dp.Attributes().PutStr("plan", "pro")
			dp.Attributes().PutStr("dup2", "second")
			return withDuplicateKeys(t, md)
		}, "removed_attributes", "duplicate_key", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"dup1": "first", "plan": "pro"}, a.AsRaw())
			assert.Equal(t, 2, a.Len())
		}},
		{"a repaired key equal to a later key: the first is kept", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr("k\x00", "first")
			dp.Attributes().PutStr("k\uFFFD", "second")
			return md
		}, "removed_attributes", "duplicate_key", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"k\uFFFD": "first"}, a.AsRaw())
		}},
		{"duplicate keys in a nested map", func(t *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			m := dp.Attributes().PutEmptyMap("doc")
			m.PutInt("dup1", 1)
			m.PutInt("dup2", 2)
			return withDuplicateKeys(t, md)
		}, "removed_attributes", "duplicate_key", 1, func(t *testing.T, a pcommon.Map) {
			assert.Equal(t, map[string]any{"doc": map[string]any{"dup1": int64(1)}}, a.AsRaw())
		}},
		{"value past the storage bound with no configured limit", func(_ *testing.T, md pmetric.Metrics, dp pmetric.NumberDataPoint) pmetric.Metrics {
			dp.Attributes().PutStr("blob", strings.Repeat("x", 5000))
			return md
		}, "truncated_values", "value_length", 1, func(t *testing.T, a pcommon.Map) {
			v, _ := a.Get("blob")
			assert.Len(t, v.Str(), validate.MaxIndexedValueLen)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Validation.MaxValueLength = 0
			s, tt, _ := newTestSampler(t, cfg)
			md, _, sm := newMetrics()
			dps := deltaSum(sm, "requests")
			good := dps.AppendEmpty()
			good.SetIntValue(7)
			good.Attributes().PutStr("plan", "pro")
			hostile := dps.AppendEmpty()
			hostile.SetIntValue(1)
			md = tc.build(t, md, hostile)
			out, err := s.processMetrics(context.Background(), stamped(md))
			require.NoError(t, err)
			newOutputCheck(t, cfg).metrics(out)
			outDps := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
			require.Equal(t, 2, outDps.Len(), "both points leave the processor")
			assert.Equal(t, map[string]any{"plan": "pro"}, outDps.At(0).Attributes().AsRaw(), "the good point is untouched")
			assert.Equal(t, int64(7), outDps.At(0).IntValue())
			tc.check(t, outDps.At(1).Attributes())
			assert.Equal(t, tc.n, counter(t, tt, "processor_sampler_"+tc.counter, reason(tc.reason)))
		})
	}
}

// TestHostileMetricFields covers the strings of a metric outside its points.
func TestHostileMetricFields(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	md, rm, sm := newMetrics()
	rm.SetSchemaUrl("https://x\x00")
	sm.Scope().SetName("lib\xff")
	sm.Scope().SetVersion("1.0\x00")
	sm.Scope().Attributes().PutStr("owner", "a\x00")
	dps := deltaSum(sm, "requests")
	m := sm.Metrics().At(0)
	m.SetDescription("counts\x00")
	m.SetUnit("{req}\xfe")
	dp := dps.AppendEmpty()
	dp.SetIntValue(1)
	ex := dp.Exemplars().AppendEmpty()
	ex.FilteredAttributes().PutStr("trace\x00", "v\xff")
	bad := deltaSum(sm, "bad\x00name")
	bad.AppendEmpty().SetIntValue(1)

	out, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	newOutputCheck(t, testConfig()).metrics(out)
	assert.Equal(t, 1, out.DataPointCount())
	assert.Equal(t, "counts\uFFFD", m.Description())
	assert.Equal(t, "lib\uFFFD", sm.Scope().Name())
	assert.Equal(t, map[string]any{"trace\uFFFD": "v\uFFFD"}, ex.FilteredAttributes().AsRaw())
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_dropped_items", sigMetrics, reason("invalid_metric_name")),
		"a metric name is refused, never repaired: names are identity")
	assert.Equal(t, int64(5), counter(t, tt, "processor_sampler_repaired_values", reason("nul")))
	assert.Equal(t, int64(3), counter(t, tt, "processor_sampler_repaired_values", reason("invalid_utf8")))
}

func TestHostileEvents(t *testing.T) {
	tests := []struct {
		name    string
		build   func(t *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs
		counter string
		reason  string
		n       int64
		check   func(t *testing.T, lr plog.LogRecord)
	}{
		{"NUL in a string body", func(_ *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			lr.Body().SetStr("boom\x00")
			return ld
		}, "repaired_values", "nul", 1, func(t *testing.T, lr plog.LogRecord) {
			assert.Equal(t, "boom\uFFFD", lr.Body().Str())
		}},
		{"NUL and invalid UTF-8 in a map body", func(_ *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			m := lr.Body().SetEmptyMap()
			m.PutStr("k\x00", "v\xff")
			m.PutEmptySlice("list").AppendEmpty().SetStr("\x00")
			return ld
		}, "repaired_values", "nul", 2, func(t *testing.T, lr plog.LogRecord) {
			assert.Equal(t, map[string]any{"k\uFFFD": "v\uFFFD", "list": []any{"\uFFFD"}}, lr.Body().Map().AsRaw())
		}},
		{"slice body nested past the depth bound", func(_ *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			sl := lr.Body().SetEmptySlice()
			for range 40 {
				sl = sl.AppendEmpty().SetEmptySlice()
			}
			return ld
		}, "truncated_values", "nesting_depth", 1, func(t *testing.T, lr plog.LogRecord) {
			assert.Equal(t, validate.MaxDepth, depthOf(lr.Body()))
		}},
		{"NUL in the event name is repaired", func(_ *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			lr.SetEventName("sign\x00up")
			return ld
		}, "repaired_values", "nul", 1, func(t *testing.T, lr plog.LogRecord) {
			assert.Equal(t, "sign\uFFFDup", lr.EventName())
		}},
		{"page, user, country, region and stack trace with NUL", func(_ *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			a := lr.Attributes()
			a.PutStr("url.path", "/a\x00")
			a.PutStr("geo.country.iso_code", "D\x00E")
			a.PutStr("geo.region.iso_code", "\x00")
			a.PutStr("exception.stacktrace", "at x\x00\n"+strings.Repeat("y", 4000))
			return ld
		}, "repaired_values", "nul", 4, func(t *testing.T, lr plog.LogRecord) {
			v, _ := lr.Attributes().Get("url.path")
			assert.Equal(t, "/a\uFFFD", v.Str())
			st, _ := lr.Attributes().Get("exception.stacktrace")
			assert.Greater(t, len(st.Str()), validate.MaxIndexedValueLen, "a long value keeps its own bound")
		}},
		{"user id with NUL is hashed", func(_ *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			lr.Attributes().PutStr("user.id", "u\x00")
			return ld
		}, "hashed_values", "", 1, func(t *testing.T, lr plog.LogRecord) {
			v, _ := lr.Attributes().Get("user.id")
			assert.Equal(t, expectedHash(testKey, "u\x00", 32), v.Str())
		}},
		{"duplicate record attributes", func(t *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			lr.Attributes().PutStr("dup1", "first")
			lr.Attributes().PutStr("dup2", "second")
			return withDuplicateLogKeys(t, ld)
		}, "removed_attributes", "duplicate_key", 1, func(t *testing.T, lr plog.LogRecord) {
			assert.Equal(t, map[string]any{"dup1": "first", adjustedCountKey: 1.0}, lr.Attributes().AsRaw())
		}},
		{"a body past the field bound", func(_ *testing.T, ld plog.Logs, lr plog.LogRecord) plog.Logs {
			lr.Body().SetStr(strings.Repeat("x", validate.MaxFieldLen+10))
			return ld
		}, "truncated_values", "value_length", 1, func(t *testing.T, lr plog.LogRecord) {
			assert.Len(t, lr.Body().Str(), validate.MaxFieldLen)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			s, tt, _ := newTestSampler(t, cfg)
			ld, _, lrs := newLogs()
			good := event(lrs, "click", testNow)
			good.Attributes().PutStr("page", "/signup")
			good.Body().SetStr("ok")
			hostile := event(lrs, "click", testNow)
			ld = tc.build(t, ld, hostile)
			out, err := s.processLogs(context.Background(), ld)
			require.NoError(t, err)
			newOutputCheck(t, cfg).logs(out, true)
			outRecs := out.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
			require.Equal(t, 2, outRecs.Len())
			assert.Equal(t, map[string]any{"page": "/signup", adjustedCountKey: 1.0}, outRecs.At(0).Attributes().AsRaw())
			assert.Equal(t, "ok", outRecs.At(0).Body().Str())
			tc.check(t, outRecs.At(1))
			var kvs []attribute.KeyValue
			if tc.reason != "" {
				kvs = append(kvs, reason(tc.reason))
			}
			assert.Equal(t, tc.n, counter(t, tt, "processor_sampler_"+tc.counter, kvs...))
		})
	}
}

func TestEventNameBound(t *testing.T) {
	tests := []struct {
		name, event, reason string
	}{
		{"255 bytes", strings.Repeat("e", 255), ""},
		{"256 bytes", strings.Repeat("e", 256), "invalid_event_name"},
		// 200 bytes on the wire, but each NUL becomes the 3-byte U+FFFD: the repaired name is too long.
		{"too long once repaired", strings.Repeat("e\x00", 100), "invalid_event_name"},
		{"invalid UTF-8 only", "\xff\xfe", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, tt, _ := newTestSampler(t, testConfig())
			ld, _, lrs := newLogs()
			event(lrs, tc.event, testNow)
			event(lrs, "ok", testNow)
			out, err := s.processLogs(context.Background(), ld)
			require.NoError(t, err)
			newOutputCheck(t, testConfig()).logs(out, true)
			if tc.reason == "" {
				assert.Equal(t, 2, out.LogRecordCount())
				return
			}
			assert.Equal(t, 1, out.LogRecordCount())
			assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_dropped_items", sigLogs, reason(tc.reason)))
		})
	}
}

// TestMemoDoesNotHideRepeats sends points whose keys match the memo (the previous point's checked
// keys) except where a repeated key hides: the repeat is found whatever the position.
func TestMemoDoesNotHideRepeats(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	md, _, sm := newMetrics()
	dps := deltaSum(sm, "requests")
	for range 3 { // points whose keys the memo learns and vouches for
		dp := dps.AppendEmpty()
		dp.SetIntValue(1)
		for _, k := range []string{"a", "b", "c", "zz1"} {
			dp.Attributes().PutStr(k, "v-"+k)
		}
	}
	dp := dps.AppendEmpty() // a, b, then zz1 twice on the wire: the second matches the memo
	dp.SetIntValue(1)
	dp.Attributes().PutStr("a", "v-a")
	dp.Attributes().PutStr("b", "v-b")
	dp.Attributes().PutStr("zz2", "first")
	dp.Attributes().PutStr("zz1", "second")
	var m pmetric.ProtoMarshaler
	b, err := m.MarshalMetrics(md)
	require.NoError(t, err)
	var u pmetric.ProtoUnmarshaler
	md, err = u.UnmarshalMetrics(bytes.ReplaceAll(b, []byte("zz2"), []byte("zz1")))
	require.NoError(t, err)
	out, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	newOutputCheck(t, testConfig()).metrics(out)
	last := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(3)
	assert.Equal(t, map[string]any{"a": "v-a", "b": "v-b", "zz1": "first"}, last.Attributes().AsRaw(), "the first zz1 is kept")
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_removed_attributes", reason("duplicate_key")))
}

// TestRepairKeysManyKeys covers a map past validate.MaxGuardedKeys with a repeated key.
func TestRepairKeysManyKeys(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	md, rm, sm := newMetrics()
	ra := rm.Resource().Attributes()
	for i := range 40 {
		ra.PutStr(fmt.Sprintf("r%02d", i), "v")
	}
	ra.PutStr("dup1", "first")
	ra.PutStr("dup2", "second")
	deltaSum(sm, "requests").AppendEmpty().SetIntValue(1)
	md = withDuplicateKeys(t, md)
	out, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	newOutputCheck(t, testConfig()).metrics(out)
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_removed_attributes", reason("duplicate_key")))
	v, _ := out.ResourceMetrics().At(0).Resource().Attributes().Get("dup1")
	assert.Equal(t, "first", v.Str())
}

// ---- timestamps ----

func TestMetricTimestamps(t *testing.T) {
	points := map[string]func(sm pmetric.ScopeMetrics) timed{
		"sum": func(sm pmetric.ScopeMetrics) timed { return deltaSum(sm, "s").AppendEmpty() },
		"gauge": func(sm pmetric.ScopeMetrics) timed {
			m := sm.Metrics().AppendEmpty()
			m.SetName("g")
			return m.SetEmptyGauge().DataPoints().AppendEmpty()
		},
		"histogram": func(sm pmetric.ScopeMetrics) timed {
			m := sm.Metrics().AppendEmpty()
			m.SetName("h")
			return m.SetEmptyHistogram().DataPoints().AppendEmpty()
		},
		"exponential histogram": func(sm pmetric.ScopeMetrics) timed {
			m := sm.Metrics().AppendEmpty()
			m.SetName("e")
			return m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
		},
		"summary": func(sm pmetric.ScopeMetrics) timed {
			m := sm.Metrics().AppendEmpty()
			m.SetName("q")
			return m.SetEmptySummary().DataPoints().AppendEmpty()
		},
	}
	now := uint64(testNow.UnixNano())
	times := []struct {
		name   string
		ts     uint64
		reason string
	}{
		{"now", now, ""},
		{"59 minutes ahead", now + uint64(59*time.Minute), ""},
		{"a year ago (retention is the exporter's call)", now - uint64(365*24*time.Hour), ""},
		{"1 ns after 1970", 1, ""},
		{"missing", 0, "timestamp_missing"},
		{"61 minutes ahead", now + uint64(61*time.Minute), "timestamp_in_future"},
		{"before 1970 when signed", 1 << 63, "timestamp_invalid"},
		{"largest", math.MaxUint64, "timestamp_invalid"},
	}
	for kind, add := range points {
		for _, tc := range times {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				s, tt, _ := newTestSampler(t, testConfig())
				md, _, sm := newMetrics()
				add(sm).SetTimestamp(pcommon.Timestamp(tc.ts))
				out, err := s.processMetrics(context.Background(), md)
				if tc.reason == "" {
					require.NoError(t, err)
					assert.Equal(t, 1, out.DataPointCount())
					return
				}
				require.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)
				assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_dropped_items", sigMetrics, reason(tc.reason)))
			})
		}
	}
}

func TestLogTimestampInvalid(t *testing.T) {
	cfg := testConfig()
	cfg.Validation.MaxFuture = 0 // even without a future bound
	s, tt, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	event(lrs, "click", testNow).SetTimestamp(1 << 63)
	out, err := s.processLogs(context.Background(), ld)
	require.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)
	assert.Equal(t, 0, out.LogRecordCount())
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_dropped_items", sigLogs, reason("timestamp_invalid")))
}

// ---- PII in values that are not strings ----

func TestNonStringPII(t *testing.T) {
	const redacted = "[REDACTED:card]"
	tests := []struct {
		name  string
		set   func(v pcommon.Value)
		want  any // the value's AsRaw() after processing
		cards int64
	}{
		{"int card", func(v pcommon.Value) { v.SetInt(4111111111111111) }, redacted, 1},
		{"negative int card", func(v pcommon.Value) { v.SetInt(-5555555555554444) }, redacted, 1},
		{"13-digit card", func(v pcommon.Value) { v.SetInt(4222222222222) }, redacted, 1},
		{"19-digit card", func(v pcommon.Value) { v.SetInt(6221260000000000001) }, redacted, 1},
		{"Luhn-invalid", func(v pcommon.Value) { v.SetInt(4111111111111112) }, int64(4111111111111112), 0},
		{"epoch milliseconds, Luhn-valid", func(v pcommon.Value) { v.SetInt(1700000000004) }, int64(1700000000004), 0},
		{"12 digits", func(v pcommon.Value) { v.SetInt(411111111111) }, int64(411111111111), 0},
		{"min int64", func(v pcommon.Value) { v.SetInt(math.MinInt64) }, int64(math.MinInt64), 0},
		{"integral double card", func(v pcommon.Value) { v.SetDouble(4111111111111111) }, redacted, 1},
		{"fractional double", func(v pcommon.Value) { v.SetDouble(4111111111111111.5) }, 4111111111111111.5, 0},
		{"huge double", func(v pcommon.Value) { v.SetDouble(1e300) }, 1e300, 0},
		{"NaN", func(v pcommon.Value) { v.SetDouble(math.NaN()) }, nil, 0},
		{"bytes holding a card", func(v pcommon.Value) { v.SetEmptyBytes().FromRaw([]byte("pan=4111 1111 1111 1111")) }, []byte("pan=" + redacted), 1},
		{"ints in a slice", func(v pcommon.Value) {
			sl := v.SetEmptySlice()
			sl.AppendEmpty().SetInt(4111111111111111)
			sl.AppendEmpty().SetInt(42)
		}, []any{redacted, int64(42)}, 1},
		{"int in a map", func(v pcommon.Value) { v.SetEmptyMap().PutInt("n", 5555555555554444) }, map[string]any{"n": redacted}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("metrics", func(t *testing.T) {
				s, tt, _ := newTestSampler(t, testConfig())
				md, _, sm := newMetrics()
				dp := deltaSum(sm, "requests").AppendEmpty()
				dp.SetIntValue(1)
				tc.set(dp.Attributes().PutEmpty("v"))
				out, err := s.processMetrics(context.Background(), stamped(md))
				require.NoError(t, err)
				newOutputCheck(t, testConfig()).metrics(out)
				v, _ := dp.Attributes().Get("v")
				if tc.want == nil {
					assert.True(t, math.IsNaN(v.Double()))
				} else {
					assert.Equal(t, tc.want, v.AsRaw())
				}
				assert.Equal(t, tc.cards, counter(t, tt, "processor_sampler_redacted_values", reason("card")))
			})
			t.Run("events", func(t *testing.T) {
				s, tt, _ := newTestSampler(t, testConfig())
				ld, _, lrs := newLogs()
				lr := event(lrs, "pay", testNow)
				tc.set(lr.Attributes().PutEmpty("v"))
				tc.set(lr.Body())
				out, err := s.processLogs(context.Background(), ld)
				require.NoError(t, err)
				newOutputCheck(t, testConfig()).logs(out, true)
				v, _ := lr.Attributes().Get("v")
				if tc.want == nil {
					assert.True(t, math.IsNaN(v.Double()))
					return
				}
				assert.Equal(t, tc.want, v.AsRaw())
				assert.Equal(t, tc.want, lr.Body().AsRaw())
				assert.Equal(t, 2*tc.cards, counter(t, tt, "processor_sampler_redacted_values", reason("card")))
			})
		})
	}
}

func TestCustomPatternOnIntegers(t *testing.T) {
	cfg := testConfig()
	cfg.Scrub.CustomPatterns = []CustomPattern{{Name: "ssn", Regex: `^\d{9}$`}}
	s, tt, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	lr := event(lrs, "signup", testNow)
	lr.Attributes().PutInt("tax_ref", 78051120)
	lr.Attributes().PutInt("ref", 123456789)
	lr.Attributes().PutInt("payment_ref", 4111111111111111)
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"tax_ref": int64(78051120), "ref": "[REDACTED:ssn]", "payment_ref": "[REDACTED:card]", adjustedCountKey: 1.0,
	}, lr.Attributes().AsRaw())
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_redacted_values", reason("ssn")))
}

// ---- refusal log lines ----

func TestRefusalsLogged(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tt)
	set.Logger = zap.New(core)
	s, err := newSampler(set, testConfig())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.shutdown(context.Background())) })
	clock := &testClock{now: testNow}
	s.now = clock.Now

	send := func(name string) {
		md, _, sm := newMetrics()
		deltaSum(sm, name).AppendEmpty().SetIntValue(1)
		deltaSum(sm, "ok").AppendEmpty().SetIntValue(1)
		_, err := s.processMetrics(context.Background(), stamped(md))
		require.NoError(t, err)
	}
	for range 5 {
		send("bad name\x00")
	}
	ld, _, lrs := newLogs()
	event(lrs, "", testNow)
	event(lrs, "ok", testNow).SetTimestamp(0)
	_, err = s.processLogs(context.Background(), ld)
	require.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)

	lines := logs.TakeAll()
	require.Len(t, lines, 3, "one line per signal and reason within a second")
	first := lines[0].ContextMap()
	assert.Equal(t, "invalid_metric_name", first["reason"])
	assert.Equal(t, "bad name\uFFFD", first["metric"], "the name is logged, made printable")
	assert.Equal(t, int64(1), first["count"])
	assert.Contains(t, first["hint"], "metric name")
	assert.Equal(t, "missing_event_name", lines[1].ContextMap()["reason"])
	assert.Equal(t, "timestamp_missing", lines[2].ContextMap()["reason"])
	assert.Equal(t, "ok", lines[2].ContextMap()["event"])

	clock.Advance(refusalInterval)
	send("1st")
	lines = logs.TakeAll()
	require.Len(t, lines, 1, "a second later the reason is logged again")
	assert.Equal(t, "1st", lines[0].ContextMap()["metric"])
	assert.Equal(t, int64(6), counter(t, tt, "processor_sampler_dropped_items", sigMetrics, reason("invalid_metric_name")),
		"every refusal is counted, logged or not")
}

func TestLoggableBoundsNames(t *testing.T) {
	assert.Len(t, loggable(strings.Repeat("x", 1000)), maxLoggedNameLen)
	assert.Equal(t, "a\uFFFD\uFFFD", loggable("a\x00\xff"))
}

// ---- configuration ----

func TestStorageBoundsInConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Validation.MaxValueLength = validate.MaxIndexedValueLen + 1
	assert.ErrorContains(t, confmap.Validate(cfg), "validation: max_value_length: 2049 is above 2048 bytes")
	cfg = testConfig()
	cfg.Validation.MaxLongValueLength = validate.MaxFieldLen + 1
	assert.ErrorContains(t, confmap.Validate(cfg), "validation: max_long_value_length: 1048577 is above the storage bound of 1048576 bytes")
	cfg = testConfig()
	cfg.Scrub.CustomPatterns = []CustomPattern{{Name: "ord\x00er", Regex: "x"}}
	assert.ErrorContains(t, confmap.Validate(cfg), `scrub::custom_patterns::0: name: "ord\x00er" is not valid UTF-8 without NUL bytes`)
	cfg = testConfig()
	cfg.Validation.MaxValueLength = validate.MaxIndexedValueLen
	cfg.Validation.MaxLongValueLength = validate.MaxFieldLen
	assert.NoError(t, confmap.Validate(cfg))
}
