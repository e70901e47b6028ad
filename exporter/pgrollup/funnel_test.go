package pgrollup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type funnelRow struct {
	Step       int
	Name       string
	Users      float64
	Conversion *float64
	Median     *time.Duration
}

func (te *testExporter) funnel(t *testing.T, steps []string, since, until time.Time, within string) []funnelRow {
	t.Helper()
	rows, err := te.pool.Query(context.Background(),
		"SELECT step, name, users, conversion, median_time FROM "+te.schema+".funnel($1, $2, $3, $4::interval)", steps, since, until, within)
	require.NoError(t, err)
	defer rows.Close()
	var out []funnelRow
	for rows.Next() {
		var r funnelRow
		require.NoError(t, rows.Scan(&r.Step, &r.Name, &r.Users, &r.Conversion, &r.Median))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func ptr[T any](v T) *T { return &v }

// TestFunnel checks track.funnel against a fixture whose answers are known: users dropping at each
// step, a user whose later steps fall outside `within`, out-of-order steps, a sampled user
// (adjusted_count 2), a user who started before `since`, and events without a user.
func TestFunnel(t *testing.T) {
	te := startExporter(t, nil)
	t0 := hoursAgo(4)
	steps := []string{"signup_start", "signup_profile", "signup_payment", "signup_complete"}
	m := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Minute))) }
	type visit struct {
		step string
		at   time.Time
	}
	users := []struct {
		user   string
		weight float64
		visits []visit
	}{
		// Completes: 1, 2 and 1 minutes between steps.
		{"u1", 0, []visit{{"signup_start", m(0)}, {"signup_profile", m(1)}, {"signup_payment", m(3)}, {"signup_complete", m(4)}}},
		// Drops after payment; a page view in between changes nothing.
		{"u2", 0, []visit{{"signup_start", m(0)}, {"page_view", m(1)}, {"signup_profile", m(2)}, {"signup_payment", m(6)}}},
		// Drops after the profile.
		{"u3", 0, []visit{{"signup_start", m(0)}, {"signup_profile", m(3)}}},
		// Drops at once; starting twice counts once.
		{"u4", 0, []visit{{"signup_start", m(0)}, {"signup_start", m(1)}}},
		// Payment and completion come 40 and 41 minutes after the start: outside within (30m).
		{"u5", 0, []visit{{"signup_start", m(0)}, {"signup_profile", m(5)}, {"signup_payment", m(40)}, {"signup_complete", m(41)}}},
		// The profile before the start is out of order: only step 1.
		{"u6", 0, []visit{{"signup_profile", m(-1)}, {"signup_start", m(0)}}},
		// Payment before profile: the payment does not count, so the user stops at step 2.
		{"u7", 0, []visit{{"signup_start", m(0)}, {"signup_payment", m(1)}, {"signup_profile", m(2)}, {"signup_complete", m(3)}}},
		// Sampled at 50%: stands for 2 users; reaches the profile after 4 minutes.
		{"u8", 2, []visit{{"signup_start", m(0)}, {"signup_profile", m(4)}}},
		// Started before since: not in the funnel at all.
		{"u9", 0, []visit{{"signup_start", m(-90)}, {"signup_profile", m(1)}, {"signup_payment", m(2)}}},
	}
	var events []ev
	for _, u := range users {
		for _, v := range u.visits {
			events = append(events, ev{name: v.step, service: "web", at: v.at, user: u.user, weight: u.weight, page: "/signup"})
		}
	}
	events = append(events, ev{name: "signup_start", service: "web", at: m(0)}) // no user: ignored
	te.pushEvents(t, events...)

	got := te.funnel(t, steps, t0.Add(-time.Hour), t0.Add(2*time.Hour), "30 minutes")
	want := []funnelRow{
		{1, "signup_start", 9, nil, nil},
		// u1 1m, u2 2m, u3 3m, u5 5m, u7 2m, u8 4m: median 2.5m.
		{2, "signup_profile", 7, ptr(7.0 / 9), ptr(150 * time.Second)},
		// u1 2m, u2 4m.
		{3, "signup_payment", 2, ptr(2.0 / 7), ptr(3 * time.Minute)},
		{4, "signup_complete", 1, ptr(0.5), ptr(time.Minute)},
	}
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].Step, got[i].Step)
		assert.Equal(t, want[i].Name, got[i].Name)
		assert.Equal(t, want[i].Users, got[i].Users, "step %d users", i+1)
		if want[i].Conversion == nil {
			assert.Nil(t, got[i].Conversion, "step %d conversion", i+1)
		} else if assert.NotNil(t, got[i].Conversion, "step %d conversion", i+1) {
			assert.InDelta(t, *want[i].Conversion, *got[i].Conversion, 1e-12, "step %d conversion", i+1)
		}
		assert.Equal(t, want[i].Median, got[i].Median, "step %d median", i+1)
	}

	// A wider window lets u5 finish; a step nobody reached reads 0 with no median.
	got = te.funnel(t, steps, t0.Add(-time.Hour), t0.Add(2*time.Hour), "1 hour")
	assert.Equal(t, 3.0, got[2].Users)
	assert.Equal(t, 2.0, got[3].Users)
	got = te.funnel(t, []string{"signup_start", "nobody"}, t0.Add(-time.Hour), t0.Add(2*time.Hour), "1 hour")
	assert.Equal(t, 0.0, got[1].Users)
	assert.Equal(t, ptr(0.0), got[1].Conversion)
	assert.Nil(t, got[1].Median)

	// Bad arguments are errors that say which.
	_, err := te.pool.Exec(context.Background(), "SELECT * FROM "+te.schema+".funnel($1, now(), now() - interval '1 hour', interval '1 hour')", steps)
	require.ErrorContains(t, err, "until")
	_, err = te.pool.Exec(context.Background(), "SELECT * FROM "+te.schema+".funnel($1, now() - interval '1 hour', now(), interval '0')", steps)
	require.ErrorContains(t, err, "within")
}

// TestEventErrors checks the error view: grouped by message, counts estimated with adjusted
// counts, first/last seen, and the latest stack trace.
func TestEventErrors(t *testing.T) {
	te := startExporter(t, nil)
	t0 := hoursAgo(2)
	stack := func(n string) map[string]any {
		return map[string]any{"exception.type": "*errors.errorString", "exception.stacktrace": "main.pay()\n\tpay.go:" + n}
	}
	te.pushEvents(t,
		ev{name: "error", service: "web", at: t0, body: "card declined", attrs: stack("1")},
		ev{name: "error", service: "web", at: t0.Add(time.Minute), body: "card declined", weight: 5, attrs: stack("2")},
		ev{name: "error", service: "web", at: t0.Add(2 * time.Minute), body: "card declined", attrs: stack("3")},
		ev{name: "error", service: "web", at: t0.Add(3 * time.Minute), body: "timeout", attrs: stack("9")},
		ev{name: "click", service: "web", at: t0, attrs: map[string]any{"click.target": "#pay"}},
	)
	type errRow struct {
		Message     string
		Count       float64
		Stored      int64
		First, Last time.Time
		Type, Stack string
	}
	rows, err := te.pool.Query(context.Background(), `SELECT message, count, stored, first_seen, last_seen, sample_type, sample_stacktrace
  FROM `+te.schema+`.event_errors ORDER BY count DESC`)
	require.NoError(t, err)
	var got []errRow
	for rows.Next() {
		var r errRow
		require.NoError(t, rows.Scan(&r.Message, &r.Count, &r.Stored, &r.First, &r.Last, &r.Type, &r.Stack))
		r.First, r.Last = r.First.UTC(), r.Last.UTC()
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []errRow{
		{"card declined", 7, 3, t0, t0.Add(2 * time.Minute), "*errors.errorString", "main.pay()\n\tpay.go:3"},
		{"timeout", 1, 1, t0.Add(3 * time.Minute), t0.Add(3 * time.Minute), "*errors.errorString", "main.pay()\n\tpay.go:9"},
	}, got)
}

// slowSignupsQuery is the root README's "share of signups that took longer than N seconds".
const slowSignupsQuery = `WITH s AS (
  SELECT c.adjusted_count AS w,
         c.time - (SELECT min(b.time) FROM track.events b
                    WHERE b.name = 'signup_start' AND b.user_id = c.user_id
                      AND b.time >= now() - interval '1 day' AND b.time <= c.time) AS took
    FROM track.events c
   WHERE c.name = 'signup_complete' AND c.time >= now() - interval '1 day'
)
SELECT sum(w) FILTER (WHERE took > interval '60 seconds') / sum(w) AS share_slower, sum(w) AS signups
  FROM s WHERE took IS NOT NULL;`

func TestSlowSignupsQuery(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	require.Contains(t, string(readme), slowSignupsQuery, "the README's query is the one tested")
	te := startExporter(t, nil)
	t0 := hoursAgo(4)
	te.pushEvents(t,
		ev{name: "signup_start", service: "web", at: t0, user: "fast"},
		ev{name: "signup_complete", service: "web", at: t0.Add(45 * time.Second), user: "fast"},
		ev{name: "signup_start", service: "web", at: t0, user: "slow", weight: 3},
		ev{name: "signup_complete", service: "web", at: t0.Add(90 * time.Second), user: "slow", weight: 3},
		ev{name: "signup_start", service: "web", at: t0, user: "left"},
	)
	q := strings.ReplaceAll(slowSignupsQuery, "track.", te.schema+".")
	var share, signups float64
	require.NoError(t, te.pool.QueryRow(context.Background(), q).Scan(&share, &signups))
	assert.Equal(t, 4.0, signups)
	assert.Equal(t, 0.75, share)
}

// TestFunnelTiesAndDuplicates checks migration 005: a step whose event has the same timestamp as
// the previous step's counts as in order, and an event re-sent in another request (stored twice)
// counts once, also in a funnel that repeats a step name and so could match the copy.
func TestFunnelTiesAndDuplicates(t *testing.T) {
	te := startExporter(t, nil)
	t0 := hoursAgo(3)
	m := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Minute))) }
	e := func(user, name string, at time.Time) ev {
		return ev{name: name, service: "web", at: at, user: user}
	}
	te.pushEvents(t,
		// tie: profile stamped with the start's clock reading.
		e("tie", "start", m(0)), e("tie", "profile", m(0)), e("tie", "pay", m(2)),
		// a tie on a later step.
		e("tie3", "start", m(0)), e("tie3", "profile", m(1)), e("tie3", "pay", m(1)),
		// the profile strictly before the start stays out of order.
		e("early", "profile", m(0)), e("early", "start", m(0).Add(time.Microsecond)),
		// one view, re-sent below in another request.
		e("dup", "view", m(0)), e("dup", "start", m(0)),
		// two real views.
		e("twice", "view", m(0)), e("twice", "view", m(2)),
		// a, b, a at one instant: the second a must be another event than the first.
		e("aba", "view", m(0)), e("aba", "click", m(0)),
	)
	// The re-sends: other requests (other keys), the same events.
	te.pushEvents(t, e("dup", "view", m(0)), e("dup", "start", m(0)), e("tie", "profile", m(0)))
	te.pushEvents(t, e("dup", "view", m(0)))
	require.Equal(t, 3.0, te.count(t, "SELECT count(*) FROM "+te.schema+".events WHERE user_id = 'dup' AND name = 'view'"),
		"the copies are stored: the funnel, not the write path, treats them as one")

	since, until := t0.Add(-time.Hour), t0.Add(time.Hour)
	users := func(steps ...string) []float64 {
		var out []float64
		for _, r := range te.funnel(t, steps, since, until, "30 minutes") {
			out = append(out, r.Users)
		}
		return out
	}
	// start: tie, tie3, early, dup (once although stored twice); profile: tie (tie), tie3;
	// pay: tie (2m after), tie3 (tie).
	assert.Equal(t, []float64{4, 2, 2}, users("start", "profile", "pay"))
	// view twice: only "twice" viewed twice; dup's copies and aba's single view do not count.
	assert.Equal(t, []float64{3, 1}, users("view", "view"))
	// view, click, view at one instant: aba has one view, so stops at click.
	assert.Equal(t, []float64{3, 1, 0}, users("view", "click", "view"))
	// A tie's time to the step is zero.
	rows := te.funnel(t, []string{"start", "profile"}, since, until, "30 minutes")
	require.Len(t, rows, 2)
	require.NotNil(t, rows[1].Median)
	assert.Equal(t, 30*time.Second, *rows[1].Median, "median of 0 (tie) and 1m (tie3)")
}
