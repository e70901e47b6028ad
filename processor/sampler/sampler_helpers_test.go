package sampler

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/trackhq/track/processor/sampler/internal/metadata"
	"github.com/trackhq/track/processor/sampler/internal/metadatatest"
)

const testKey = "0123456789abcdef0123"

var testNow = time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)

func nan() float64 { return math.NaN() }

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Hashing.Key = testKey
	return cfg
}

// seededRand returns a concurrency-safe deterministic source of uniform 64-bit values.
func seededRand(seed uint64) func() uint64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64()
	}
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestSampler builds a sampler with a fixed clock, a seeded random source and in-memory telemetry.
func newTestSampler(t testing.TB, cfg *Config) (*sampler, *componenttest.Telemetry, *testClock) {
	t.Helper()
	require.NoError(t, confmap.Validate(cfg))
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	s, err := newSampler(metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)
	clock := &testClock{now: testNow}
	s.now = clock.Now
	s.rand = seededRand(42)
	t.Cleanup(func() { require.NoError(t, s.shutdown(context.Background())) })
	return s, tt, clock
}

// expectedHash is the documented hash of an identifier: hex HMAC-SHA256 truncated to n characters.
func expectedHash(key, v string, n int) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))[:n]
}

func processorSettings() processor.Settings {
	return processortest.NewNopSettings(metadata.Type)
}

type nopLogs struct{}

func (nopLogs) ConsumeLogs(context.Context, plog.Logs) error { return nil }
func (nopLogs) Capabilities() consumer.Capabilities          { return consumer.Capabilities{} }

// stamped sets the unset timestamps of md's data points to testNow and returns md: the processor
// refuses points without a timestamp.
func stamped(md pmetric.Metrics) pmetric.Metrics {
	at := pcommon.NewTimestampFromTime(testNow)
	forEachPoint(md, func(p timed) {
		if p.Timestamp() == 0 {
			p.SetTimestamp(at)
		}
	})
	return md
}

// forEachPoint calls f with every data point of md.
func forEachPoint(md pmetric.Metrics, f func(timed)) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					eachPoint(m.Sum().DataPoints(), f)
				case pmetric.MetricTypeGauge:
					eachPoint(m.Gauge().DataPoints(), f)
				case pmetric.MetricTypeHistogram:
					eachPoint(m.Histogram().DataPoints(), f)
				case pmetric.MetricTypeExponentialHistogram:
					eachPoint(m.ExponentialHistogram().DataPoints(), f)
				case pmetric.MetricTypeSummary:
					eachPoint(m.Summary().DataPoints(), f)
				}
			}
		}
	}
}

func eachPoint[P timed, S interface {
	Len() int
	At(int) P
}](dps S, f func(timed)) {
	for i := 0; i < dps.Len(); i++ {
		f(dps.At(i))
	}
}
