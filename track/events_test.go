package track_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/trackhq/track/internal/otlptest"
	"github.com/trackhq/track/track"
)

var errCardDeclined = errors.New("card declined for jane@example.com")

func failPayment() track.EventField { return track.Error(errCardDeclined) }

func TestEventCarriesTheDesignsPayload(t *testing.T) {
	for _, proto := range []string{track.ProtocolGRPC, track.ProtocolHTTPProtobuf} {
		t.Run(proto, func(t *testing.T) {
			r := otlptest.Start(t)
			endpoint := r.GRPCEndpoint
			if proto == track.ProtocolHTTPProtobuf {
				endpoint = r.HTTPEndpoint
			}
			tr := newTracker(t, r, track.WithProtocol(proto), track.WithEndpoint(endpoint))
			ctx := context.Background()
			tr.Event(ctx, "page_view", track.Page("/signup/step-1"), track.User("u-42"), track.Location("DE", "BE", "Berlin"))
			tr.Event(ctx, "click", track.Page("/signup/step-1"), track.Click("next"), track.Scroll(80))
			tr.Event(ctx, "error", track.Page("/pay"), failPayment(), track.Attr(attribute.String("plan", "pro")))
			require.NoError(t, tr.Shutdown(ctx))

			logs := r.Logs()
			require.Len(t, logs, 3)
			byName := map[string]otlptest.LogRecord{}
			for _, l := range logs {
				byName[l.EventName] = l
				assert.Equal(t, "test-service", l.Resource["service.name"])
				assert.False(t, l.Time.IsZero())
			}
			pv := byName["page_view"]
			assert.Equal(t, map[string]string{
				"url.path": "/signup/step-1", "user.id": "u-42",
				"geo.country.iso_code": "DE", "geo.region.iso_code": "BE", "geo.locality.name": "Berlin",
			}, pv.Attrs)
			assert.Equal(t, "next", byName["click"].Attrs["click.target"])
			assert.Equal(t, "80", byName["click"].Attrs["scroll.depth"])

			e := byName["error"]
			assert.Equal(t, errCardDeclined.Error(), e.Body)
			assert.Equal(t, errCardDeclined.Error(), e.Attrs["exception.message"])
			assert.Equal(t, "*errors.errorString", e.Attrs["exception.type"])
			assert.Contains(t, e.Attrs["exception.stacktrace"], "track_test.failPayment()", "the stack is captured where Error is called")
			assert.Contains(t, e.Attrs["exception.stacktrace"], "events_test.go:")
			assert.Equal(t, "pro", e.Attrs["plan"])
			assert.Equal(t, int32(17), e.Severity, "SEVERITY_NUMBER_ERROR")

			st := tr.Stats()
			assert.Equal(t, uint64(3), st.EventsExported)
			assert.Zero(t, st.EventsDropped)
		})
	}
}

func TestEventsAreExactFromManyGoroutines(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	ctx := context.Background()
	const goroutines, each = 4, 1000 // within the batch queue, so nothing may drop
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				tr.Event(ctx, "scroll", track.Scroll(i%100))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, tr.Shutdown(ctx))
	assert.Len(t, r.Logs(), goroutines*each)
	assert.Equal(t, uint64(goroutines*each), tr.Stats().EventsExported)
}

func TestEventBacklogSurvivesAnOutage(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	ctx := context.Background()
	r.SetFailing(true)
	for i := 0; i < 10; i++ {
		tr.Event(ctx, "signup_step", track.Attr(attribute.Int("step", i)))
	}
	require.Eventually(t, func() bool {
		st := tr.Stats()
		return st.EventsInBacklog == 10 && st.ExportFailures > 0
	}, 10*time.Second, time.Millisecond, "the batch processor exports within a second; the failed export is held")
	r.SetFailing(false)
	require.NoError(t, tr.Shutdown(ctx))
	logs := r.Logs()
	require.Len(t, logs, 10)
	for i, l := range logs {
		assert.Equal(t, "signup_step", l.EventName)
		assert.Equal(t, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}[i], l.Attrs["step"], "replayed in order")
	}
	assert.Zero(t, tr.Stats().EventsInBacklog)
}

func TestEventsRefusedOrDroppedAreCounted(t *testing.T) {
	r := otlptest.Start(t)
	tr := newTracker(t, r)
	ctx := context.Background()
	tr.Event(ctx, "")
	tr.Event(ctx, "bad name")
	assert.Equal(t, uint64(2), tr.Stats().Refused)
	require.NoError(t, tr.Shutdown(ctx))
	tr.Event(ctx, "after_shutdown", track.Error(nil))
	assert.Equal(t, uint64(1), tr.Stats().EventsDropped)
	assert.Empty(t, r.Logs())
}
