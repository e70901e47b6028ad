package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookServer is a local webhook: it answers each request with the next status of its script (200
// once the script is used up) and records the messages it answered 2xx to.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	attempts int
	got      []Message
	raw      []map[string]any
}

func newHookServer(t *testing.T, script ...int) *hookServer {
	h := &hookServer{script: script}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		h.mu.Lock()
		defer h.mu.Unlock()
		h.attempts++
		status := http.StatusOK
		if len(h.script) > 0 {
			status, h.script = h.script[0], h.script[1:]
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(status)
		if status/100 != 2 {
			fmt.Fprint(w, "no")
			return
		}
		var m Message
		assert.NoError(t, json.Unmarshal(body, &m))
		var raw map[string]any
		assert.NoError(t, json.Unmarshal(body, &raw))
		h.got, h.raw = append(h.got, m), append(h.raw, raw)
	}))
	t.Cleanup(h.Close)
	return h
}

// fail makes the next n requests answer status.
func (h *hookServer) fail(n, status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.script = append(h.script, status)
	}
}

func (h *hookServer) messages() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.got...)
}

func (h *hookServer) tries() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts
}

// testHook posts to url with short waits: at most retryFor per message.
func testHook(t *testing.T, url string, retryFor time.Duration) *webhook {
	return &webhook{url: url, client: &http.Client{Timeout: 5 * time.Second}, retryFor: retryFor,
		firstWait: 5 * time.Millisecond, maxWait: 20 * time.Millisecond, logf: t.Logf}
}

var t0 = time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)

// anomaly is the anomalous bucket of metric at minute min after t0.
func anomaly(metric, kind string, min int, value, expected float64) Anomaly {
	return Anomaly{Time: t0.Add(time.Duration(min) * time.Minute), Metric: metric, Value: value, Expected: expected,
		Lower: expected / 2, Upper: expected * 2, Score: math.Abs(expected-value) / 3, Kind: kind}
}

// posted is a message as the tests compare it.
type posted struct {
	event        Event
	metric, kind string
}

func TestWatcherPostsOnceWhenAnAnomalyStartsAndOnceWhenItEnds(t *testing.T) {
	drop := func(min int) Anomaly { return anomaly("new-signup", "drop", min, 0, 30) }
	spike := func(min int) Anomaly { return anomaly("new-signup", "spike", min, 120, 30) }
	fraud := func(min int) Anomaly { return anomaly("fraudulent-card", "spike", min, 700, 20) }
	type poll struct {
		at   time.Duration // after t0
		rows []Anomaly
	}
	cases := []struct {
		name  string
		polls []poll
		want  []posted
	}{
		{"start, lasting, then end after end-after", []poll{
			{0, []Anomaly{drop(0)}},
			{30 * time.Second, []Anomaly{drop(0)}},
			{time.Minute, []Anomaly{drop(1)}},
			{2 * time.Minute, []Anomaly{drop(2)}},
			{3 * time.Minute, nil},                // absent for 1m: less than end-after (2m)
			{3*time.Minute + 59*time.Second, nil}, // still less
			{4 * time.Minute, nil},                // absent for end-after: it ends
			{5 * time.Minute, nil},                // and ends once only
			{7 * time.Minute, nil},
		}, []posted{{Started, "new-signup", "drop"}, {Ended, "new-signup", "drop"}}},
		{"never repeats while it lasts", []poll{
			{0, []Anomaly{drop(0)}}, {time.Minute, []Anomaly{drop(1)}}, {2 * time.Minute, []Anomaly{drop(2)}},
			{3 * time.Minute, []Anomaly{drop(3)}}, {4 * time.Minute, []Anomaly{drop(3), drop(4)}},
		}, []posted{{Started, "new-signup", "drop"}}},
		{"one normal poll inside an anomaly does not end it", []poll{
			{0, []Anomaly{drop(0)}}, {time.Minute, nil}, {2 * time.Minute, []Anomaly{drop(2)}},
			{3 * time.Minute, nil}, {4 * time.Minute, []Anomaly{drop(4)}},
		}, []posted{{Started, "new-signup", "drop"}}},
		{"metrics and kinds are separate anomalies", []poll{
			{0, []Anomaly{drop(0), fraud(0)}},
			{time.Minute, []Anomaly{fraud(1)}},
			{3 * time.Minute, []Anomaly{fraud(3), spike(3)}},
			{6 * time.Minute, nil},
		}, []posted{
			{Started, "fraudulent-card", "spike"}, {Started, "new-signup", "drop"},
			{Ended, "new-signup", "drop"}, {Started, "new-signup", "spike"},
			{Ended, "fraudulent-card", "spike"}, {Ended, "new-signup", "spike"},
		}},
		{"nothing anomalous posts nothing", []poll{{0, nil}, {time.Minute, nil}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHookServer(t)
			w := newWatcher(testHook(t, h.URL, time.Second), 2*time.Minute, time.UTC, t.Logf)
			for _, p := range c.polls {
				_, err := w.step(context.Background(), t0.Add(p.at), p.rows)
				require.NoError(t, err, "poll at %s", p.at)
			}
			var got []posted
			for _, m := range h.messages() {
				got = append(got, posted{m.Event, m.Metric, m.Kind})
			}
			assert.Equal(t, c.want, got)
			assert.Equal(t, len(c.want), h.tries(), "one request per message")
		})
	}
}

func TestMessagesCarrySlackTextAndTheBuckets(t *testing.T) {
	h := newHookServer(t)
	w := newWatcher(testHook(t, h.URL, time.Second), time.Minute, time.UTC, t.Logf)
	first, worst, last := anomaly("new-signup", "drop", 0, 3, 30), anomaly("new-signup", "drop", 1, 0, 31), anomaly("new-signup", "drop", 2, 2, 29)
	// The view says the run started 3 minutes before the watcher first saw it, judged by a young
	// metric's baseline.
	first.Started, first.Baseline, last.Baseline = t0.Add(-3*time.Minute), "recent", "recent"
	ctx := context.Background()
	_, err := w.step(ctx, t0, []Anomaly{first})
	require.NoError(t, err)
	_, err = w.step(ctx, t0.Add(time.Minute), []Anomaly{last, worst}) // out of order on purpose
	require.NoError(t, err)
	_, err = w.step(ctx, t0.Add(2*time.Minute), nil)
	require.NoError(t, err)

	msgs := h.messages()
	require.Len(t, msgs, 2)
	start, end := msgs[0], msgs[1]
	assert.Equal(t, Started, start.Event)
	assert.Equal(t, first.Started, start.Since.UTC(), "since the start of the run the view names")
	assert.Nil(t, start.Until)
	assert.Contains(t, start.Text, "*new-signup*")
	assert.Contains(t, start.Text, "drop since 2026-11-30 01:57 UTC")
	assert.Contains(t, start.Text, "3 where 30 was expected")
	assert.Contains(t, start.Text, "young metric")
	assert.Equal(t, "recent", start.Latest.Baseline)

	assert.Equal(t, Ended, end.Event)
	assert.Equal(t, first.Started, end.Since.UTC())
	require.NotNil(t, end.Until)
	assert.Equal(t, last.Time, end.Until.UTC(), "until is the latest anomalous bucket")
	assert.Equal(t, worst.Time, end.Worst.Time.UTC(), "worst is the highest score")
	assert.Equal(t, last.Time, end.Latest.Time.UTC())
	assert.Contains(t, end.Text, "from 2026-11-30 01:57 UTC to 2026-11-30 02:02 UTC")
	for _, raw := range h.raw {
		assert.IsType(t, "", raw["text"], "Slack reads a string text field")
	}
}

func TestTextIsEscapedForSlackAndNaNIsNull(t *testing.T) {
	h := newHookServer(t)
	w := newWatcher(testHook(t, h.URL, time.Second), time.Minute, time.UTC, t.Logf)
	a := Anomaly{Time: t0, Metric: "a<b>&c", Value: 0, Expected: math.NaN(), Lower: math.NaN(), Upper: math.Inf(1),
		Score: math.NaN(), Kind: "drop"}
	_, err := w.step(context.Background(), t0, []Anomaly{a})
	require.NoError(t, err)
	require.Len(t, h.raw, 1)
	text := h.raw[0]["text"].(string)
	assert.Contains(t, text, "a&lt;b&gt;&amp;c")
	assert.NotContains(t, text, "<b>")
	assert.Contains(t, text, "where n/a was expected")
	latest := h.raw[0]["latest"].(map[string]any)
	for _, k := range []string{"expected", "lower", "upper", "score"} {
		assert.Contains(t, latest, k)
		assert.Nil(t, latest[k], "%s is null", k)
	}
	assert.Equal(t, 0.0, latest["value"])
	assert.True(t, math.IsNaN(h.messages()[0].Latest.Expected), "null reads back as NaN")
}

func TestWebhookRetries(t *testing.T) {
	cases := []struct {
		name      string
		script    []int
		retryFor  time.Duration
		delivered bool
		attempts  int
		refused   bool
	}{
		{"500s then success", []int{500, 502, 503}, 5 * time.Second, true, 4, false},
		{"timeout and rate limit (Retry-After: 0) are retried", []int{408, 429}, 5 * time.Second, true, 3, false},
		{"400 is not retried", []int{400}, 5 * time.Second, false, 1, true},
		{"404 (a revoked hook) is not retried", []int{404}, 5 * time.Second, false, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHookServer(t, c.script...)
			err := testHook(t, h.URL, c.retryFor).Post(context.Background(), Message{Text: "x", Event: Started})
			assert.Equal(t, c.attempts, h.tries())
			if c.delivered {
				require.NoError(t, err)
				assert.Len(t, h.messages(), 1)
				return
			}
			require.Error(t, err)
			assert.Equal(t, c.refused, errors.Is(err, errRefused), "%v", err)
			assert.Empty(t, h.messages())
		})
	}
}

func TestRetriesAreBoundedAndTheMessageIsPostedAtTheNextPoll(t *testing.T) {
	h := newHookServer(t)
	h.fail(1000, http.StatusInternalServerError)
	w := newWatcher(testHook(t, h.URL, 100*time.Millisecond), time.Minute, time.UTC, t.Logf)
	drop := anomaly("new-signup", "drop", 0, 0, 30)

	start := time.Now()
	_, err := w.step(context.Background(), t0, []Anomaly{drop})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second, "retries stop after -retry-for")
	assert.Greater(t, h.tries(), 1, "it retried")
	assert.Contains(t, err.Error(), "500")

	h.mu.Lock()
	h.script = nil // the webhook is back
	h.mu.Unlock()
	_, err = w.step(context.Background(), t0.Add(time.Minute), []Anomaly{anomaly("new-signup", "drop", 1, 0, 30)})
	require.NoError(t, err)
	_, err = w.step(context.Background(), t0.Add(2*time.Minute), []Anomaly{anomaly("new-signup", "drop", 2, 0, 30)})
	require.NoError(t, err)
	msgs := h.messages()
	require.Len(t, msgs, 1, "the start, once, when the webhook was back")
	assert.Equal(t, Started, msgs[0].Event)
	assert.Equal(t, t0, msgs[0].Since.UTC(), "since the first bucket seen, also when it was posted late")

	// An end that cannot be posted stays open and is posted at the next poll.
	h.fail(1000, http.StatusBadGateway)
	_, err = w.step(context.Background(), t0.Add(5*time.Minute), nil)
	require.Error(t, err)
	h.mu.Lock()
	h.script = nil
	h.mu.Unlock()
	_, err = w.step(context.Background(), t0.Add(6*time.Minute), nil)
	require.NoError(t, err)
	_, err = w.step(context.Background(), t0.Add(7*time.Minute), nil)
	require.NoError(t, err)
	msgs = h.messages()
	require.Len(t, msgs, 2)
	assert.Equal(t, Ended, msgs[1].Event)
}

func TestAnAnomalyThatEndsBeforeItsStartWasPostedIsDropped(t *testing.T) {
	h := newHookServer(t)
	h.fail(1000, http.StatusServiceUnavailable)
	w := newWatcher(testHook(t, h.URL, 50*time.Millisecond), time.Minute, time.UTC, t.Logf)
	_, err := w.step(context.Background(), t0, []Anomaly{anomaly("new-login", "drop", 0, 0, 10)})
	require.Error(t, err)
	h.mu.Lock()
	h.script = nil
	h.mu.Unlock()
	changed, err := w.step(context.Background(), t0.Add(2*time.Minute), nil)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Empty(t, h.messages(), "no end without a start")
	assert.Empty(t, w.open)
}

func TestStateFileKeepsOpenAnomaliesAcrossRestarts(t *testing.T) {
	h := newHookServer(t)
	path := filepath.Join(t.TempDir(), "state.json")
	ctx := context.Background()
	drop, spike := anomaly("new-signup", "drop", 0, 0, 30), anomaly("fraudulent-card", "spike", 0, 700, 20)

	first := newWatcher(testHook(t, h.URL, time.Second), 2*time.Minute, time.UTC, t.Logf)
	require.NoError(t, first.load(path, t0), "a missing state file is an empty state")
	changed, err := first.step(ctx, t0, []Anomaly{drop, spike})
	require.NoError(t, err)
	require.True(t, changed)
	require.NoError(t, first.save(path))
	require.Len(t, h.messages(), 2)

	// The restarted watcher sees the drop still going and the spike gone.
	second := newWatcher(testHook(t, h.URL, time.Second), 2*time.Minute, time.UTC, t.Logf)
	restart := t0.Add(10 * time.Minute)
	require.NoError(t, second.load(path, restart))
	_, err = second.step(ctx, restart, []Anomaly{anomaly("new-signup", "drop", 10, 0, 30)})
	require.NoError(t, err)
	assert.Len(t, h.messages(), 2, "no start posted again after the restart")
	_, err = second.step(ctx, restart.Add(2*time.Minute), []Anomaly{anomaly("new-signup", "drop", 12, 0, 30)})
	require.NoError(t, err)
	msgs := h.messages()
	require.Len(t, msgs, 3, "the spike that ended while the watcher was stopped ends once, end-after after the restart")
	assert.Equal(t, posted{Ended, "fraudulent-card", "spike"}, posted{msgs[2].Event, msgs[2].Metric, msgs[2].Kind})
	assert.Equal(t, spike.Time, msgs[2].Since.UTC())

	cases := []struct{ name, content, err string }{
		{"not JSON", "{", "reading the state"},
		{"another version", `{"version": 9, "open": []}`, "version 9"},
		{"an anomaly without a metric", `{"version": 1, "open": [{"announced": true}]}`, "without a metric"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "state.json")
			require.NoError(t, os.WriteFile(p, []byte(c.content), 0o600))
			err := newWatcher(nil, time.Minute, time.UTC, t.Logf).load(p, t0)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.err)
		})
	}
}

func TestNum(t *testing.T) {
	cases := []struct {
		v    float64
		want string
	}{{0, "0"}, {30, "30"}, {2.25, "2.2"}, {-4, "-4"}, {1e20, "1e+20"}, {math.NaN(), "n/a"}, {math.Inf(-1), "-Inf"}}
	for _, c := range cases {
		assert.Equal(t, c.want, num(c.v), "%v", c.v)
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com/…"},
		{"http://127.0.0.1:9000/", "http://127.0.0.1:9000"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"https://user:pw@example.com/hook?token=x", "https://example.com/…"},
		{"https://example.com?token=x", "https://example.com/…"},
		{"not a url", "the webhook"},
		{"::", "the webhook"},
	}
	for _, c := range cases {
		got := redactURL(c.in)
		assert.Equal(t, c.want, got, c.in)
		for _, secret := range []string{"secret", "pw", "token"} {
			assert.NotContains(t, got, secret, c.in)
		}
	}
}

func TestPostErrorsNeverHoldTheURLsPath(t *testing.T) {
	h := newHookServer(t)
	url := h.URL + "/services/T0/B0/the-secret"
	h.Close() // connection refused from now on
	err := testHook(t, url, 30*time.Millisecond).Post(context.Background(), Message{Text: "x"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "the-secret")
	assert.Contains(t, err.Error(), strings.TrimPrefix(h.URL, "http://"), "names the host")
}
