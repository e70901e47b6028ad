package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHistoryHasABurstADipAndAnAttack(t *testing.T) {
	now := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	h := history(now, 20, rand.New(rand.NewPCG(1, 2)))
	require.Len(t, h, 2)
	signup, fraud := h[0].counters[0], h[1].counters[1]
	require.Equal(t, "new-signup", signup.name)
	require.Equal(t, "fraudulent-card", fraud.name)
	require.Len(t, signup.values, 20)
	assert.Equal(t, now.Add(-20*time.Minute), signup.starts[0])
	assert.Equal(t, now.Add(-time.Minute), signup.starts[19])
	assert.Zero(t, signup.values[15], "signups drop to zero at 75%")
	assert.Greater(t, signup.values[11], signup.values[2], "signups burst at 55%")
	assert.Greater(t, fraud.values[7], 5*fraud.values[2], "fraud spikes at 35%")
}

func TestRequestIsOneDeltaPointPerMinute(t *testing.T) {
	now := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	h := history(now, 3, rand.New(rand.NewPCG(1, 2)))
	rm := h[0].request()
	assert.Equal(t, "login-service", rm.Resource.Attributes[0].Value.GetStringValue())
	m := rm.ScopeMetrics[0].Metrics[0]
	sum := m.GetSum()
	require.NotNil(t, sum)
	assert.True(t, sum.IsMonotonic)
	assert.Equal(t, metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, sum.AggregationTemporality)
	require.Len(t, sum.DataPoints, 3)
	p := sum.DataPoints[0]
	assert.Equal(t, uint64(now.Add(-3*time.Minute).UnixNano()), p.StartTimeUnixNano)
	assert.Less(t, p.TimeUnixNano, uint64(now.Add(-2*time.Minute).UnixNano()), "a point ends inside its minute")
}
