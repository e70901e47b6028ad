package sampler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/trackhq/track/processor/sampler/internal/metadatatest"
)

func newLogs() (plog.Logs, plog.ResourceLogs, plog.LogRecordSlice) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "web")
	return ld, rl, rl.ScopeLogs().AppendEmpty().LogRecords()
}

func event(lrs plog.LogRecordSlice, name string, at time.Time) plog.LogRecord {
	lr := lrs.AppendEmpty()
	lr.SetEventName(name)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	return lr
}

func TestLogsValidation(t *testing.T) {
	tests := []struct {
		name   string
		build  func(lrs plog.LogRecordSlice)
		reason string // "" when kept
	}{
		{"event now", func(l plog.LogRecordSlice) { event(l, "click", testNow) }, ""},
		{"no event name", func(l plog.LogRecordSlice) { event(l, "", testNow) }, "missing_event_name"},
		{"59 minutes ahead", func(l plog.LogRecordSlice) { event(l, "click", testNow.Add(59*time.Minute)) }, ""},
		{"61 minutes ahead", func(l plog.LogRecordSlice) { event(l, "click", testNow.Add(61*time.Minute)) }, "timestamp_in_future"},
		{"89 days old", func(l plog.LogRecordSlice) { event(l, "click", testNow.Add(-89*24*time.Hour)) }, ""},
		{"91 days old", func(l plog.LogRecordSlice) { event(l, "click", testNow.Add(-91*24*time.Hour)) }, "timestamp_too_old"},
		{"observed time used when time is unset", func(l plog.LogRecordSlice) {
			lr := event(l, "click", time.Time{})
			lr.SetTimestamp(0)
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(testNow))
		}, ""},
		{"no time at all", func(l plog.LogRecordSlice) { event(l, "click", time.Time{}).SetTimestamp(0) }, "timestamp_missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, tt, _ := newTestSampler(t, testConfig())
			ld, _, lrs := newLogs()
			tc.build(lrs)
			out, err := s.processLogs(context.Background(), ld)
			if tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, 1, out.LogRecordCount())
				return
			}
			require.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)
			assert.Equal(t, 0, out.LogRecordCount())
			assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_dropped_items", sigLogs, reason(tc.reason)))
		})
	}
}

func TestLogsValidationConfigurable(t *testing.T) {
	cfg := testConfig()
	cfg.Validation.RequireEventName = false
	cfg.Validation.MaxAge = 0
	cfg.Validation.MaxFuture = 0
	s, _, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	event(lrs, "", testNow)
	event(lrs, "x", testNow.Add(-10000*time.Hour))
	event(lrs, "x", testNow.Add(10000*time.Hour))
	out, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, 3, out.LogRecordCount())
}

func TestLogsScrubbing(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	ld, _, lrs := newLogs()
	lr := event(lrs, "error", testNow)
	lr.Attributes().PutStr("user.id", "alice-42")
	lr.Attributes().PutStr("page", "/signup/step-2")
	lr.Attributes().PutStr("user.email", "alice@example.com")
	lr.Attributes().PutStr("exception.message", "card 4111111111111111 declined for alice@example.com")
	lr.Body().SetStr("java.lang.IllegalStateException: token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl\n\tat com.shop.Pay.charge(Pay.java:12)\n\tat com.shop.Api.post(Api.java:88)")
	structured := event(lrs, "click", testNow)
	body := structured.Body().SetEmptyMap()
	body.PutStr("target", "#submit")
	body.PutStr("password", "hunter2")
	body.PutStr("user.id", "bob")
	nested := body.PutEmptySlice("contacts")
	nested.AppendEmpty().SetStr("bob@example.com")
	nested.AppendEmpty().SetEmptyMap().PutStr("ssn", "078-05-1120")

	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"user.id":           expectedHash(testKey, "alice-42", 32),
		"page":              "/signup/step-2",
		"exception.message": "card [REDACTED:card] declined for [REDACTED:email]",
		adjustedCountKey:    1.0,
	}, lr.Attributes().AsRaw())
	assert.Equal(t, "java.lang.IllegalStateException: token [REDACTED:token]\n\tat com.shop.Pay.charge(Pay.java:12)\n\tat com.shop.Api.post(Api.java:88)", lr.Body().Str())
	assert.Equal(t, map[string]any{
		"target":   "#submit",
		"user.id":  expectedHash(testKey, "bob", 32),
		"contacts": []any{"[REDACTED:email]", map[string]any{}},
	}, structured.Body().Map().AsRaw())
	at := func(r string) attribute.Set { return attribute.NewSet(reason(r)) }
	metadatatest.AssertEqualProcessorSamplerRemovedAttributes(t, tt, []metricdata.DataPoint[int64]{
		{Attributes: at("deny_list"), Value: 3},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorSamplerRedactedValues(t, tt, []metricdata.DataPoint[int64]{
		{Attributes: at("email"), Value: 2}, {Attributes: at("card"), Value: 1}, {Attributes: at("token"), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorSamplerHashedValues(t, tt, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
}

func TestLogsBodiesOff(t *testing.T) {
	cfg := testConfig()
	cfg.Scrub.Bodies = false
	s, _, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	lr := event(lrs, "error", testNow)
	lr.Body().SetStr("alice@example.com")
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, "alice@example.com", lr.Body().Str())
}

func TestLogSamplingRules(t *testing.T) {
	cfg := testConfig()
	cfg.Sampling.Logs.Probability = 0.5
	cfg.Sampling.Logs.Rules = []SamplingRule{
		{Name: "error", Probability: 1},
		{Name: "scroll", Probability: 0.1},
		{Name: "page.*", Probability: 0.25},
	}
	s, tt, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	const users = 2000
	for u := range users {
		for _, name := range []string{"error", "scroll", "scroll", "page.view", "click"} {
			event(lrs, name, testNow).Attributes().PutStr("user.id", fmt.Sprintf("user-%d", u))
		}
	}
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	kept := map[string]int{}
	adjusted := map[string]float64{}
	scrollsPerUser := map[string]int{}
	for i := 0; i < lrs.Len(); i++ {
		lr := lrs.At(i)
		kept[lr.EventName()]++
		v, ok := lr.Attributes().Get(adjustedCountKey)
		require.True(t, ok, "every kept record carries sampling.adjusted_count")
		adjusted[lr.EventName()] += v.Double()
		if lr.EventName() == "scroll" {
			uid, _ := lr.Attributes().Get("user.id")
			scrollsPerUser[uid.Str()]++
		}
	}
	assert.Equal(t, users, kept["error"])
	assert.Equal(t, float64(users), adjusted["error"])
	for uid, n := range scrollsPerUser {
		assert.Equal(t, 2, n, "sampling is consistent per user: %s", uid)
	}
	// Estimates of event counts stay close to the truth.
	assert.InDelta(t, 2*users, adjusted["scroll"], 2*users*0.25)
	assert.InDelta(t, users, adjusted["page.view"], users*0.15)
	assert.InDelta(t, users, adjusted["click"], users*0.1)
	total := 5 * users
	assert.Equal(t, int64(total-lrs.Len()), counter(t, tt, "processor_sampler_sampled_out_items", sigLogs))
}

func TestLogSamplingKeys(t *testing.T) {
	for _, by := range []SampleBy{SampleByAttribute, SampleByTraceID, SampleByRandom} {
		t.Run(string(by), func(t *testing.T) {
			cfg := testConfig()
			cfg.Sampling.Logs.Probability = 0.5
			cfg.Sampling.Logs.By = by
			s, _, _ := newTestSampler(t, cfg)
			ld, _, lrs := newLogs()
			tid := pcommon.TraceID{1, 2, 3}
			for range 200 {
				lr := event(lrs, "click", testNow)
				lr.SetTraceID(tid)
				lr.Attributes().PutStr("user.id", "same-user")
			}
			out, _ := s.processLogs(context.Background(), ld)
			n := out.LogRecordCount()
			if by == SampleByRandom {
				assert.Greater(t, n, 50)
				assert.Less(t, n, 150)
			} else {
				assert.True(t, n == 0 || n == 200, "all or nothing when keyed, got %d", n)
			}
		})
	}
}

func TestAdjustedCountComposes(t *testing.T) {
	attrs := pcommon.NewMap()
	setAdjustedCount(attrs, 4)
	v, _ := attrs.Get(adjustedCountKey)
	assert.Equal(t, 4.0, v.Double())
	attrs.PutInt(adjustedCountKey, 3)
	setAdjustedCount(attrs, 2)
	v, _ = attrs.Get(adjustedCountKey)
	assert.Equal(t, 6.0, v.Double())
}

func TestFactoryCreatesAndRejects(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	require.ErrorContains(t, confmap.Validate(cfg), "hashing", "the default config needs a hash key")
	cfg.Hashing.Key = testKey
	lp, err := f.CreateLogs(context.Background(), processorSettings(), cfg, nopLogs{})
	require.NoError(t, err)
	require.NoError(t, lp.Shutdown(context.Background()))
	assert.True(t, lp.Capabilities().MutatesData)
	assert.True(t, strings.HasPrefix(f.Type().String(), "sampler"))
}

func TestLogsBodyNotTruncated(t *testing.T) {
	s, _, _ := newTestSampler(t, testConfig())
	ld, _, lrs := newLogs()
	long := strings.Repeat("at com.shop.Pay.charge(Pay.java:12)\n", 50)
	lr := event(lrs, "error", testNow)
	lr.Body().SetStr(long)
	m := event(lrs, "error", testNow).Body().SetEmptyMap()
	m.PutStr("stack", long)
	lr.Attributes().PutEmptyMap("exception").PutStr("stacktrace", long)
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, long, lr.Body().Str())
	v, _ := m.Get("stack")
	assert.Equal(t, long, v.Str())
	ex, _ := lr.Attributes().Get("exception")
	v, _ = ex.Map().Get("stacktrace")
	assert.Equal(t, long, v.Str())
}
