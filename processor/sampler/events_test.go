package sampler

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/trackhq/track/track"
)

// goStack formats frames as track.Error does (the function, then its file and line indented),
// after a head of free text, as a recovered panic's message adds.
func goStack(head []string, frames [][3]string) string {
	var b strings.Builder
	for _, h := range head {
		b.WriteString(h)
		b.WriteByte('\n')
	}
	for _, f := range frames {
		fmt.Fprintf(&b, "%s()\n\t%s:%s\n", f[0], f[1], f[2])
	}
	return b.String()
}

// trackErrorEvent appends a log record shaped like the one track.Event(ctx, "error",
// track.Page(page), track.User(user), track.Location(...), track.Error(err)) emits through the
// OTel logs SDK: event name, timestamps, severity ERROR, the attributes in field order and the error
// message as the body.
func trackErrorEvent(lrs plog.LogRecordSlice, page, user, msg, stack string) plog.LogRecord {
	lr := event(lrs, "error", testNow)
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(testNow))
	lr.SetSeverityNumber(plog.SeverityNumberError)
	a := lr.Attributes()
	a.PutStr(track.KeyPage, page)
	a.PutStr(track.KeyUser, user)
	a.PutStr(track.KeyCountry, "DE")
	a.PutStr(track.KeyRegion, "DE-BE")
	a.PutStr(track.KeyCity, "Berlin")
	a.PutStr(track.KeyErrorType, "*fmt.wrapError")
	a.PutStr(track.KeyErrorMsg, msg)
	a.PutStr(track.KeyStackTrace, stack)
	lr.Body().SetStr(msg)
	return lr
}

// TestTrackErrorEvent runs the payload of a track error event through the default configuration
// with per-event sampling rules, and checks every field the storage and the analysts rely on.
func TestTrackErrorEvent(t *testing.T) {
	cfg := testConfig()
	cfg.Sampling.Logs.Probability = 0.5
	cfg.Sampling.Logs.Rules = []SamplingRule{{Name: "error", Probability: 1}, {Name: "scroll", Probability: 0.1}}
	s, tt, _ := newTestSampler(t, cfg)

	frames := [][3]string{
		{"github.com/trackhq/track.Error", "/work/main/track/events.go", "81"},
		{"main.(*signupForm).submitStep", "/app/examples/web-signup/form.go", "142"},
		{"main.(*signupForm).confirmEmail", "/app/examples/web-signup/form.go", "97"},
		{"net/http.HandlerFunc.ServeHTTP", "/usr/local/go/src/net/http/server.go", "2294"},
		// A module cache path has an "@" and a version: it is not an email.
		{"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp.(*middleware).serveHTTP",
			"/root/go/pkg/mod/go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp@v0.63.0/handler.go", "179"},
		{"net/http.serverHandler.ServeHTTP", "/usr/local/go/src/net/http/server.go", "3301"},
		{"net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go", "2102"},
		{"runtime.goexit", "/usr/local/go/src/runtime/asm_amd64.s", "1700"},
	}
	head := []string{
		"panic: confirmation mail to alice.smith@example.com bounced [recovered]",
		"\tcard=4111 1111 1111 1111 order=4111111111111112 ts=1772620200000",
	}
	stack := goStack(head, frames)
	require.Greater(t, len(stack), cfg.Validation.MaxValueLength, "a real stack trace is longer than max_value_length")
	wantStack := goStack([]string{
		"panic: confirmation mail to [REDACTED:email] bounced [recovered]",
		"\tcard=[REDACTED:card] order=4111111111111112 ts=1772620200000",
	}, frames)
	msg := "signup: sending confirmation to alice.smith@example.com: 550 mailbox unavailable"
	wantMsg := "signup: sending confirmation to [REDACTED:email]: 550 mailbox unavailable"

	ld, _, lrs := newLogs()
	trackErrorEvent(lrs, "/signup/step-2", "user-8f3a", msg, stack)
	// The same user scrolls: the scroll rule, not the error rule, decides.
	const users = 500
	for u := range users {
		sc := event(lrs, "scroll", testNow)
		sc.Attributes().PutStr(track.KeyUser, fmt.Sprintf("user-%d", u))
		sc.Attributes().PutInt(track.KeyScrollDepth, 50)
	}

	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	require.Equal(t, "error", lrs.At(0).EventName(), "every error is kept")
	lr := lrs.At(0)

	assert.Equal(t, "error", lr.EventName())
	assert.Equal(t, plog.SeverityNumberError, lr.SeverityNumber())
	assert.Equal(t, pcommon.NewTimestampFromTime(testNow), lr.Timestamp())
	assert.Equal(t, map[string]any{
		track.KeyPage:       "/signup/step-2",
		track.KeyUser:       expectedHash(testKey, "user-8f3a", 32),
		track.KeyCountry:    "DE",
		track.KeyRegion:     "DE-BE",
		track.KeyErrorType:  "*fmt.wrapError",
		track.KeyErrorMsg:   wantMsg,
		track.KeyStackTrace: wantStack,
		adjustedCountKey:    1.0,
	}, lr.Attributes().AsRaw())
	assert.Equal(t, wantMsg, lr.Body().Str())

	kept := 0
	for i := 1; i < lrs.Len(); i++ {
		sc := lrs.At(i)
		require.Equal(t, "scroll", sc.EventName())
		v, ok := sc.Attributes().Get(adjustedCountKey)
		require.True(t, ok, "every kept record carries sampling.adjusted_count")
		assert.Equal(t, 10.0, v.Double())
		kept++
	}
	assert.InDelta(t, users/10, kept, users/10*0.5, "about 10%% of the scrolls are kept")

	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_removed_attributes", reason("location")))
	assert.Equal(t, int64(3), counter(t, tt, "processor_sampler_redacted_values", reason("email")))
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_redacted_values", reason("card")))
	assert.Equal(t, int64(1+kept), counter(t, tt, "processor_sampler_hashed_values"))
	assert.Equal(t, int64(users-kept), counter(t, tt, "processor_sampler_sampled_out_items", sigLogs))
	assert.Equal(t, int64(0), counter(t, tt, "processor_sampler_truncated_values", reason("value_length")), "the stack trace is not cut")
	assert.Equal(t, int64(0), counter(t, tt, "processor_sampler_dropped_items", sigLogs, reason("missing_event_name")))
}

// TestTrackEventFields checks that no key track's typed fields emit, other than the city, is
// removed by the default configuration, and that their values survive unchanged (the user id aside).
func TestTrackEventFields(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())
	ld, _, lrs := newLogs()
	lr := event(lrs, "click", testNow)
	a := lr.Attributes()
	a.PutStr(track.KeyPage, "/signup/step-1")
	a.PutStr(track.KeyUser, "u-1")
	a.PutStr(track.KeyCountry, "US")
	a.PutStr(track.KeyRegion, "US-CA")
	a.PutStr(track.KeyCity, "San Francisco")
	a.PutStr(track.KeyClickTarget, "#continue")
	a.PutInt(track.KeyScrollDepth, 75)
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		track.KeyPage:        "/signup/step-1",
		track.KeyUser:        expectedHash(testKey, "u-1", 32),
		track.KeyCountry:     "US",
		track.KeyRegion:      "US-CA",
		track.KeyClickTarget: "#continue",
		track.KeyScrollDepth: int64(75),
		adjustedCountKey:     1.0,
	}, a.AsRaw())
	for _, k := range []string{track.KeyPage, track.KeyUser, track.KeyCountry, track.KeyRegion, track.KeyClickTarget,
		track.KeyScrollDepth, track.KeyErrorType, track.KeyErrorMsg, track.KeyStackTrace} {
		assert.False(t, s.keys.action(k).removes(), "%s is kept", k)
	}
	assert.Equal(t, actLocation, s.keys.action(track.KeyCity))
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_removed_attributes", reason("location")))
}
