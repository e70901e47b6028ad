package requestkey

import (
	"encoding/hex"
	"github.com/trackhq/track/exporter/pgrollup/internal/fixtures"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func mustKey(t *testing.T, md pmetric.Metrics) [16]byte {
	t.Helper()
	k, err := Metrics(md)
	require.NoError(t, err)
	return k
}

// TestRequestKeyStable pins the keys: a persistent queue written by one collector version may be
// replayed by the next, and a replayed request must find the key its first attempt recorded.
func TestRequestKeyStable(t *testing.T) {
	gauge := fixtures.FullRequest()
	gauge.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("signup")
	lk, err := Logs(ld)
	require.NoError(t, err)
	tests := []struct {
		name string
		key  [16]byte
		want string
	}{
		{"sums", mustKey(t, fixtures.FullRequest()), "2ab000a0fa6da84399da54745c7e866c"},
		{"with gauge", mustKey(t, gauge), "0bb2965607d77a7cc35693a5cb31cf5a"},
		{"empty", mustKey(t, pmetric.NewMetrics()), "66c81d2e09f7c3723fc3c15a0d716e86"},
		{"logs", lk, "775f1c32828d9c54fe9f96a1dbf39276"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hex.EncodeToString(tt.key[:]), tt.name)
	}
}

// TestRequestKeySameRequest: the same request, as a retry, a replay from the queue file or a
// client's re-send sees it (a protobuf round trip), gets the same key.
func TestRequestKeySameRequest(t *testing.T) {
	md := fixtures.FullRequest()
	b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	require.NoError(t, err)
	replayed, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
	require.NoError(t, err)
	assert.Equal(t, mustKey(t, md), mustKey(t, replayed))
	assert.Equal(t, mustKey(t, md), mustKey(t, fixtures.FullRequest()))
}

// TestRequestKeyDiffers: a change to any field gives another key. In particular two requests that
// differ only in what the series identity drops (an instance id) are both counted.
func TestRequestKeyDiffers(t *testing.T) {
	point := func(md pmetric.Metrics) pmetric.NumberDataPoint {
		return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
	}
	metric := func(md pmetric.Metrics) pmetric.Metric {
		return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	}
	tests := map[string]func(md pmetric.Metrics){
		"instance id": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).Resource().Attributes().PutStr("service.instance.id", "pod-2")
		},
		"resource dropped": func(md pmetric.Metrics) { md.ResourceMetrics().At(0).Resource().SetDroppedAttributesCount(1) },
		"resource schema":  func(md pmetric.Metrics) { md.ResourceMetrics().At(0).SetSchemaUrl("") },
		"scope name":       func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().SetName("other") },
		"scope version":    func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().SetVersion("v2") },
		"scope attribute": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Attributes().PutStr("k", "v")
		},
		"scope schema": func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).SetSchemaUrl("s") },
		"metric name":  func(md pmetric.Metrics) { metric(md).SetName("new-signups") },
		"description":  func(md pmetric.Metrics) { metric(md).SetDescription("signups") },
		"unit":         func(md pmetric.Metrics) { metric(md).SetUnit("{signup}") },
		"metadata":     func(md pmetric.Metrics) { metric(md).Metadata().PutStr("k", "v") },
		"cumulative": func(md pmetric.Metrics) {
			metric(md).Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		},
		"not monotonic":      func(md pmetric.Metrics) { metric(md).Sum().SetIsMonotonic(false) },
		"start time":         func(md pmetric.Metrics) { point(md).SetStartTimestamp(point(md).StartTimestamp() + 1) },
		"time":               func(md pmetric.Metrics) { point(md).SetTimestamp(point(md).Timestamp() + 1) },
		"value":              func(md pmetric.Metrics) { point(md).SetIntValue(4) },
		"double of same":     func(md pmetric.Metrics) { point(md).SetDoubleValue(3) },
		"flags":              func(md pmetric.Metrics) { point(md).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true)) },
		"attribute value":    func(md pmetric.Metrics) { point(md).Attributes().PutStr("plan", "free") },
		"attribute type":     func(md pmetric.Metrics) { point(md).Attributes().PutStr("shard", "7") },
		"slice element":      func(md pmetric.Metrics) { v, _ := point(md).Attributes().Get("tags"); v.Slice().At(1).SetBool(false) },
		"nested value":       func(md pmetric.Metrics) { v, _ := point(md).Attributes().Get("nested"); v.Map().PutDouble("x", 2.5) },
		"bytes":              func(md pmetric.Metrics) { v, _ := point(md).Attributes().Get("raw"); v.Bytes().Append(4) },
		"extra attribute":    func(md pmetric.Metrics) { point(md).Attributes().PutEmpty("e") },
		"exemplar":           func(md pmetric.Metrics) { point(md).Exemplars().AppendEmpty().SetIntValue(1) },
		"second point":       func(md pmetric.Metrics) { point(md).CopyTo(metric(md).Sum().DataPoints().AppendEmpty()) },
		"empty second scope": func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty() },
		"a gauge besides": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty().SetEmptyGauge()
		},
		// The point's attribute moved to the resource: the same identity bytes in another place.
		"attribute on resource": func(md pmetric.Metrics) {
			point(md).Attributes().Remove("plan")
			md.ResourceMetrics().At(0).Resource().Attributes().PutStr("plan", "pro")
		},
	}
	base := mustKey(t, fixtures.FullRequest())
	seen := map[[16]byte]string{base: "base"}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			md := fixtures.FullRequest()
			change(md)
			k := mustKey(t, md)
			assert.NotEqual(t, base, k)
			if other, dup := seen[k]; dup {
				t.Errorf("same key as %q", other)
			}
			seen[k] = name
		})
	}
}

// TestRequestKeyLongValues: strings and byte strings longer than the encoder's inline limit, and
// requests larger than its chunk, are covered like short ones.
func TestRequestKeyLongValues(t *testing.T) {
	long := make([]byte, 3*keyChunk)
	for i := range long {
		long[i] = byte('a' + i%26)
	}
	withLong := func(s string) pmetric.Metrics {
		md := fixtures.FullRequest()
		md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes().PutStr("long", s)
		return md
	}
	a := mustKey(t, withLong(string(long)))
	assert.Equal(t, a, mustKey(t, withLong(string(long))))
	long[len(long)-1] = 'z'
	assert.NotEqual(t, a, mustKey(t, withLong(string(long))))
	long[0] = 'z'
	assert.NotEqual(t, a, mustKey(t, withLong(string(long))))
}
