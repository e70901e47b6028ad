package pgrollup

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var hostileStrings = []string{
	"", "plain", "a\x00b", "\x00", "\xff\xfe", "k\x00ey\xff", "héllo", "<&>\"\\\n", "\u2028",
	strings.Repeat("é", 40_000), strings.Repeat("a", maxKeyBytes+1), strings.Repeat("\x00\xff", 3000),
}

// TestRepairedTextIsStorable checks the properties of text: the result is storable within its
// bound, a storable input comes back unchanged and uncounted, and every repair is counted.
func TestRepairedTextIsStorable(t *testing.T) {
	for _, s := range hostileStrings {
		for _, limit := range []int{maxStringBytes, maxKeyBytes, 4} {
			var rep repairs
			got := rep.text(s, limit)
			assert.True(t, storable(got, limit), "%q cut to %d: %q", s, limit, got)
			if storable(s, limit) {
				assert.Equal(t, s, got)
				assert.Zero(t, rep, "a storable string is not counted")
				continue
			}
			assert.Equal(t, strings.Contains(s, "\x00"), rep[repNUL] == 1, "%q: nul counted", s)
			assert.Equal(t, !utf8.ValidString(s), rep[repInvalidUTF8] == 1, "%q: invalid_utf8 counted", s)
			var unbounded repairs
			full := unbounded.text(s, math.MaxInt)
			assert.Equal(t, utf8.RuneCountInString(s), utf8.RuneCountInString(full), "%q: one rune per rune or invalid byte", s)
			assert.True(t, strings.HasPrefix(full, got), "%q: the cut keeps the start", s)
			assert.Equal(t, len(got) < len(full), rep[repTruncated] == 1, "%q: truncated counted when something was cut", s)
		}
	}
}

// TestJSONStringIsStorable checks that jsonString writes JSON that jsonb accepts (no \u0000, valid
// UTF-8 once decoded), and that a storable string is encoded as before sanitising existed
// (encoding/json's form, or the plain quoted ASCII), so that the keys of existing series hold.
func TestJSONStringIsStorable(t *testing.T) {
	for _, s := range hostileStrings {
		var rep repairs
		b := rep.jsonString(nil, s, maxKeyBytes)
		assert.NotContains(t, string(b), `\u0000`)
		var back string
		require.NoError(t, json.Unmarshal(b, &back), "%q", s)
		assert.True(t, utf8.ValidString(back) && !strings.Contains(back, "\x00"), "%q decodes to %q", s, back)
		if storable(s, maxKeyBytes) {
			enc, _ := json.Marshal(s)
			plain := `"` + s + `"`
			assert.Contains(t, []string{string(enc), plain}, string(b), "%q is encoded as before", s)
			assert.Zero(t, rep)
		} else {
			assert.NotZero(t, rep, "%q: counted", s)
		}
	}
}

// nestedValue builds a map value nested depth levels deep whose innermost map holds key: "x".
func nestedValue(depth int, key string) pcommon.Value {
	v := pcommon.NewValueMap()
	m := v.Map()
	for range depth - 1 {
		m = m.PutEmptyMap("n")
	}
	m.PutStr(key, "x")
	m.PutEmptyBytes("b").FromRaw([]byte{0, 1, 2})
	m.PutEmptySlice("s").AppendEmpty().SetStr("y")
	return v
}

func TestJSONValueNested(t *testing.T) {
	// A clean nested value is encoded exactly as encoding/json encodes its raw form.
	clean := nestedValue(3, "k")
	var rep repairs
	want, err := json.Marshal(clean.AsRaw())
	require.NoError(t, err)
	assert.Equal(t, string(want), string(rep.jsonValue(nil, clean)))
	assert.Zero(t, rep)

	// Too deep, with a NUL key: valid JSON, no \u0000, the deep part replaced, both counted.
	deep := nestedValue(maxDepth+4, "k\x00")
	deep.Map().PutStr("top\x00", "v\x00")
	b := rep.jsonValue(nil, deep)
	assert.True(t, json.Valid(b))
	assert.NotContains(t, string(b), `\u0000`)
	assert.Contains(t, string(b), tooDeepValue)
	assert.Equal(t, int64(1), rep[repTooDeep])
	assert.Equal(t, int64(2), rep[repNUL], "the top key and its value; the deep NUL key was cut off with its level")
}

func FuzzRepairs(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var rep repairs
		got := rep.text(s, maxKeyBytes)
		if !storable(got, maxKeyBytes) {
			t.Fatalf("text(%q) = %q is not storable", s, got)
		}
		b := rep.jsonString(nil, s, maxKeyBytes)
		var back string
		if err := json.Unmarshal(b, &back); err != nil || strings.Contains(back, "\x00") || !utf8.ValidString(back) {
			t.Fatalf("jsonString(%q) = %s (%v)", s, b, err)
		}
	})
}

// countsBy reads a counter of the exporter's telemetry by its reason attribute (a counter never
// recorded reads as empty, if metadata.yaml defines it).
func countsBy(t *testing.T, tel *componenttest.Telemetry, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	m, err := tel.GetMetric("otelcol_exporter_pgrollup_" + name)
	if err != nil {
		knownMetric(t, name)
		return out
	}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("reason")
		out[r.AsString()] += dp.Value
	}
	return out
}

// TestHostileStringsAreStored pushes, without the sampler, metrics and events whose strings
// Postgres would refuse (NUL bytes, invalid UTF-8) or that pass the bounds, beside good data in the
// same requests: everything is written, repaired, and each repair counted by reason. A replay of
// the hostile request is recognised by its key (computed from the request as received).
func TestHostileStringsAreStored(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)

	md := request(
		pt{metric: "good", service: "svc", at: at, value: 1, attrs: map[string]any{"plan": "pro"}},
		pt{metric: "plans", service: "svc", at: at, value: 2, attrs: map[string]any{"plan": "a\x00b"}},
		pt{metric: "keys", service: "svc", at: at, value: 3, attrs: map[string]any{"k\x00ey": "v"}},
		pt{metric: "bad\xffname", service: "svc", at: at, value: 4},
		pt{metric: "services", service: "svc\x00", at: at, value: 5},
		pt{metric: "long", service: "svc", at: at, value: 6, attrs: map[string]any{"blob": strings.Repeat("x", maxStringBytes+10)}},
		pt{metric: "deep", service: "svc", at: at, value: 7},
	)
	deep := md.ResourceMetrics().At(6).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes()
	nestedValue(maxDepth+2, "k").CopyTo(deep.PutEmpty("tree"))
	require.NoError(t, te.pushMetrics(ctx, md))

	assert.Equal(t, 28.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely"), "every point is counted")
	assert.Equal(t, 2.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely WHERE attributes->>'plan' = 'a\uFFFDb'"))
	assert.Equal(t, 3.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely WHERE attributes ? 'k\uFFFDey'"))
	assert.Equal(t, 4.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely WHERE metric = 'bad\uFFFDname'"))
	assert.Equal(t, 5.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely WHERE service = 'svc\uFFFD'"))
	assert.Equal(t, float64(maxStringBytes), te.count(t, "SELECT octet_length(attributes->>'blob') FROM "+te.schema+".series WHERE metric = 'long'"))
	assert.Equal(t, 4.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".total_minute WHERE metric = 'bad\uFFFDname'"))
	assertTotalsAgree(t, te.pool, te.schema)
	assert.Equal(t, map[string]int64{"nul": 3, "invalid_utf8": 1, "truncated": 1, "too_deep": 1},
		countsBy(t, te.tel, "values_repaired"))

	// The replay is skipped by its key: the key is of the request as received, not as repaired.
	require.NoError(t, te.pushMetrics(ctx, md))
	assert.Equal(t, 28.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely"))
	assert.Equal(t, int64(1), counter(t, te.tel, "items_duplicate"))

	e := func(i int, mod func(*ev)) ev {
		x := ev{name: "e", service: "web", at: at, user: "u" + string(rune('a'+i))}
		mod(&x)
		return x
	}
	events := []ev{
		e(0, func(*ev) {}),
		e(1, func(x *ev) { x.body = "boom\x00" }),
		e(2, func(x *ev) { x.page = "/a\xffb" }),
		e(3, func(x *ev) { x.user = "u\x00" }),
		e(4, func(x *ev) { x.country = "U\x00S" }),
		e(5, func(x *ev) { x.region = "\xfe" }),
		e(6, func(x *ev) { x.attrs = map[string]any{"exception.stacktrace": "at x\x00"} }),
		e(7, func(x *ev) { x.attrs = map[string]any{"k\x00ey": "v"} }),
		e(8, func(x *ev) { x.user = strings.Repeat("u", maxKeyBytes+100) }),
		e(9, func(x *ev) { x.name = "ev\x00nt" }),
	}
	before := countsBy(t, te.tel, "values_repaired")
	require.NoError(t, te.pushLogs(ctx, logsRequest(events...)))
	got := countsBy(t, te.tel, "values_repaired")
	for r := range got {
		got[r] -= before[r]
	}
	assert.Equal(t, map[string]int64{"nul": 6, "invalid_utf8": 2, "truncated": 1, "too_deep": 0}, got)
	q := "SELECT count(*) FROM " + te.schema + ".events WHERE "
	assert.Equal(t, 10.0, te.count(t, q+"true"), "every event is stored")
	assert.Equal(t, 1.0, te.count(t, q+"body = 'boom\uFFFD'"))
	assert.Equal(t, 1.0, te.count(t, q+"page = '/a\uFFFDb'"))
	assert.Equal(t, 1.0, te.count(t, q+"user_id = 'u\uFFFD'"))
	assert.Equal(t, 1.0, te.count(t, q+"country = 'U\uFFFDS' AND region IS NULL"))
	assert.Equal(t, 1.0, te.count(t, q+"region = '\uFFFD'"))
	assert.Equal(t, 1.0, te.count(t, q+"attributes->>'exception.stacktrace' = 'at x\uFFFD'"))
	assert.Equal(t, 1.0, te.count(t, q+"attributes ? 'k\uFFFDey'"))
	assert.Equal(t, 1.0, te.count(t, q+"octet_length(user_id) = $1", maxKeyBytes))
	assert.Equal(t, 1.0, te.count(t, q+"name = 'ev\uFFFDnt'"))
	assert.Equal(t, 1.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely WHERE metric = 'event.ev\uFFFDnt'"))
	assert.Equal(t, 9.0, te.count(t, "SELECT sum(value) FROM "+te.schema+".minutely WHERE metric = 'event.e'"))
}
