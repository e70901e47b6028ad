package track_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/internal/otlptest"
	"github.com/trackhq/track/track"
)

// assertHeartbeat checks that req is a heartbeat: the resource, one scope,
// one point of conventions.Heartbeat, a monotonic delta sum of 0 with no
// attributes.
func assertHeartbeat(t *testing.T, req *colmetricspb.ExportMetricsServiceRequest) {
	t.Helper()
	require.Len(t, req.GetResourceMetrics(), 1)
	rm := req.GetResourceMetrics()[0]
	res := map[string]string{}
	for _, kv := range rm.GetResource().GetAttributes() {
		res[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	assert.Equal(t, "test-service", res[conventions.ServiceName])
	assert.NotEmpty(t, res[conventions.ServiceInstanceID])
	require.Len(t, rm.GetScopeMetrics(), 1)
	require.Len(t, rm.GetScopeMetrics()[0].GetMetrics(), 1)
	m := rm.GetScopeMetrics()[0].GetMetrics()[0]
	assert.Equal(t, conventions.Heartbeat, m.GetName())
	sum := m.GetSum()
	require.NotNil(t, sum, "a sum, the one metric type pgrollup reads")
	assert.True(t, sum.GetIsMonotonic())
	assert.Equal(t, int32(1), int32(sum.GetAggregationTemporality()), "delta")
	require.Len(t, sum.GetDataPoints(), 1)
	dp := sum.GetDataPoints()[0]
	assert.Zero(t, dp.GetAsInt(), "a heartbeat counts nothing")
	assert.Empty(t, dp.GetAttributes())
	assert.LessOrEqual(t, dp.GetStartTimeUnixNano(), dp.GetTimeUnixNano())
}

func TestAProcessThatCountsNothingSendsAHeartbeatEachInterval(t *testing.T) {
	for _, protocol := range []string{track.ProtocolGRPC, track.ProtocolHTTPProtobuf} {
		t.Run(protocol, func(t *testing.T) {
			r := otlptest.Start(t)
			endpoint := r.GRPCEndpoint
			if protocol == track.ProtocolHTTPProtobuf {
				endpoint = r.HTTPEndpoint
			}
			tr := newTracker(t, r, track.WithProtocol(protocol), track.WithEndpoint(endpoint))
			ctx := context.Background()
			const idle = 3
			for i := 0; i < idle; i++ {
				require.NoError(t, tr.Flush(ctx))
			}
			reqs := r.Requests()
			require.Len(t, reqs, idle, "one request per interval")
			for i, req := range reqs {
				assertHeartbeat(t, req)
				if i > 0 {
					prev := reqs[i-1].GetResourceMetrics()[0].GetScopeMetrics()[0].GetMetrics()[0].GetSum().GetDataPoints()[0]
					cur := req.GetResourceMetrics()[0].GetScopeMetrics()[0].GetMetrics()[0].GetSum().GetDataPoints()[0]
					assert.Equal(t, prev.GetTimeUnixNano(), cur.GetStartTimeUnixNano(), "windows follow each other")
				}
			}
			resourceOnly := proto.Clone(reqs[0]).(*colmetricspb.ExportMetricsServiceRequest)
			resourceOnly.GetResourceMetrics()[0].ScopeMetrics = nil
			t.Logf("heartbeat request: %d bytes of protobuf, %d without its scope and point (the resource alone)",
				proto.Size(reqs[0]), proto.Size(resourceOnly))

			// An interval with points sends them and no heartbeat.
			tr.Increment("new-signup")
			require.NoError(t, tr.Flush(ctx))
			reqs = r.Requests()
			require.Len(t, reqs, idle+1)
			for _, p := range r.Points()[idle:] {
				assert.Equal(t, "new-signup", p.Metric)
			}
			assert.Equal(t, uint64(1), tr.Stats().PointsExported, "heartbeats are not counted as exported points")
		})
	}
}

func TestHeartbeatsAreNeverHeld(t *testing.T) {
	r := otlptest.Start(t)
	var log errorLog
	tr := newTracker(t, r, track.WithErrorHandler(log.handle))
	ctx := context.Background()
	reported := func(what string) int { // errors are reported on goroutines of their own
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, err := range log.errs {
			if strings.Contains(err.Error(), what) {
				n++
			}
		}
		return n
	}

	// The collector is down and nothing is counted: each interval tries one
	// heartbeat, which fails, is counted and reported, and is not kept.
	r.SetFailing(true)
	const down = 3
	for i := 0; i < down; i++ {
		_ = tr.Flush(ctx)
	}
	assert.Equal(t, down, r.Attempts(), "one attempt per interval")
	require.Eventually(t, func() bool { return reported("heartbeat") == down }, 5*time.Second, time.Millisecond)
	st := tr.Stats()
	assert.Equal(t, uint64(down), st.ExportFailures)
	assert.Zero(t, st.PointsInBacklog)

	// Points held: an empty interval only retries them, without a heartbeat.
	tr.Add("logins", 7)
	_ = tr.Flush(ctx)
	_ = tr.Flush(ctx)
	require.Eventually(t, func() bool { return reported("exporting 1 points") >= 2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, down, reported("heartbeat"), "no heartbeat while points are held")
	assert.Equal(t, int64(1), tr.Stats().PointsInBacklog)

	// Back up: an empty interval drains the held points, which show the
	// process alive; the interval after sends a heartbeat.
	r.SetFailing(false)
	require.NoError(t, tr.Flush(ctx))
	reqs := r.Requests()
	require.Len(t, reqs, 1, "the held points only: no stale heartbeat is sent again")
	assert.Equal(t, int64(7), r.Sum("logins", nil))
	require.NoError(t, tr.Flush(ctx))
	reqs = r.Requests()
	require.Len(t, reqs, 2)
	assertHeartbeat(t, reqs[1])
	st = tr.Stats()
	assert.Equal(t, uint64(1), st.PointsExported)
	assert.Zero(t, st.PointsDropped)
	assert.Zero(t, st.PointsInBacklog)
}

// counted returns the points r accepted, heartbeats left out.
func counted(r *otlptest.Receiver) []otlptest.Point {
	var out []otlptest.Point
	for _, p := range r.Points() {
		if p.Metric != conventions.Heartbeat {
			out = append(out, p)
		}
	}
	return out
}
