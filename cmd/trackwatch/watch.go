package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Anomaly is one row of the anomalies view: an anomalous bucket of a metric's total. In JSON a
// NaN (no baseline) is null.
type Anomaly struct {
	// Time is the start of the bucket.
	Time time.Time
	// Metric is the metric's name.
	Metric string
	// Value is what was counted in the bucket.
	Value float64
	// Expected is the baseline's value for the bucket; Lower and Upper bound its normal range.
	Expected float64
	Lower    float64
	Upper    float64
	// Score is the severity, comparable across metrics (see track.anomalies).
	Score float64
	// Kind is "drop" or "spike".
	Kind string
	// Started is the first bucket of the run of anomalous buckets of this kind that Time ends; zero
	// when the source does not say.
	Started time.Time
	// Baseline is the kind of baseline that judged it: "weekly", "daily" or "recent" (a young
	// metric); empty when the source does not say.
	Baseline string
}

// key identifies an anomaly that lasts: one per metric and kind.
type key struct{ Metric, Kind string }

func (a Anomaly) key() key { return key{a.Metric, a.Kind} }

// open is an anomaly the watcher has seen start and not yet seen end.
type open struct {
	// First is the first anomalous bucket seen, Last the latest, Worst the one with the highest score.
	First Anomaly `json:"first"`
	Last  Anomaly `json:"last"`
	Worst Anomaly `json:"worst"`
	// Seen is when a poll last returned it (the watcher's clock).
	Seen time.Time `json:"-"`
	// Announced tells whether its start was posted.
	Announced bool `json:"announced"`
}

// Event is what the watcher posts: an anomaly that started or ended.
type Event string

// The two events.
const (
	Started Event = "started"
	Ended   Event = "ended"
)

// Message is the JSON body posted to the webhook. Text is Slack's (and Mattermost's, Rocket.Chat's,
// Discord's /slack endpoint's) message field; the other fields are for programs.
type Message struct {
	Text   string `json:"text"`
	Event  Event  `json:"event"`
	Metric string `json:"metric"`
	Kind   string `json:"kind"`
	// Since is the start of the run of anomalous buckets (the view's "started", else the first
	// anomalous bucket seen); Until, on "ended", the start of the last one seen.
	Since time.Time  `json:"since"`
	Until *time.Time `json:"until,omitempty"`
	// Latest is the latest anomalous bucket seen; Worst the one with the highest score.
	Latest Anomaly `json:"latest"`
	Worst  Anomaly `json:"worst"`
}

// poster delivers one message, retrying as it sees fit; webhook is the one implementation.
type poster interface {
	Post(ctx context.Context, m Message) error
}

// watcher turns successive polls of what is anomalous now into one message when an anomaly of a
// metric starts and one when it ends. It is not safe for concurrent use.
type watcher struct {
	post poster
	// endAfter is how long an anomaly must be absent from the polls before it counts as ended, so
	// that one normal bucket inside a long anomaly does not end it and start it again.
	endAfter time.Duration
	// loc is the time zone of the times in the texts.
	loc  *time.Location
	open map[key]*open
	// logf receives what the watcher could not post.
	logf func(format string, args ...any)
}

func newWatcher(p poster, endAfter time.Duration, loc *time.Location, logf func(string, ...any)) *watcher {
	return &watcher{post: p, endAfter: endAfter, loc: loc, open: map[key]*open{}, logf: logf}
}

// step takes the rows of one poll, made at now, and posts what started and what ended since the
// previous poll: an anomaly starts when its (metric, kind) appears and ends once it has been absent
// for endAfter. Several rows of one (metric, kind) are one anomaly. A message that cannot be posted
// (the poster gave up) is posted again at the next step: a start until it is delivered, an end
// until it is delivered; an anomaly that ends before its start was delivered is dropped without a
// message. step returns the delivery errors joined, after trying every message; it reports whether
// what the state file keeps changed (an anomaly opened, updated, announced or closed).
func (w *watcher) step(ctx context.Context, now time.Time, rows []Anomaly) (changed bool, err error) {
	current := map[key][]Anomaly{}
	for _, r := range rows {
		current[r.key()] = append(current[r.key()], r)
	}
	var errs []error
	// Ends first, in key order, then starts, so that a kind that flips (a drop that becomes a
	// spike) reads in order.
	for _, k := range sortedKeys(w.open) {
		o := w.open[k]
		if _, ok := current[k]; ok || now.Sub(o.Seen) < w.endAfter {
			continue
		}
		if !o.Announced {
			w.logf("%s %s ended before its start could be posted; not posting its end", k.Metric, k.Kind)
			delete(w.open, k)
			changed = true
			continue
		}
		if err := w.post.Post(ctx, w.message(Ended, o)); err != nil {
			errs = append(errs, fmt.Errorf("posting the end of %s %s: %w", k.Metric, k.Kind, err))
			continue
		}
		delete(w.open, k)
		changed = true
	}
	for _, k := range sortedKeys(current) {
		o, ok := w.open[k]
		if !ok {
			o = &open{}
			w.open[k] = o
		}
		for _, a := range current[k] {
			o.add(a)
		}
		o.Seen = now
		changed = true
		if o.Announced {
			continue
		}
		if err := w.post.Post(ctx, w.message(Started, o)); err != nil {
			errs = append(errs, fmt.Errorf("posting the start of %s %s: %w", k.Metric, k.Kind, err))
			continue
		}
		o.Announced = true
		changed = true
	}
	return changed, errors.Join(errs...)
}

// since is the start of o's run: the earliest "started" the view gave, else the first bucket seen.
func (o *open) since() time.Time {
	if !o.First.Started.IsZero() && o.First.Started.Before(o.First.Time) {
		return o.First.Started
	}
	return o.First.Time
}

// baselineNote says, for a young metric, that its baseline is only its recent level.
func baselineNote(b string) string {
	if b == "recent" {
		return "; a young metric, judged against its last day only"
	}
	return ""
}

// add folds one anomalous bucket into o.
func (o *open) add(a Anomaly) {
	if o.First.Metric == "" || a.Time.Before(o.First.Time) {
		o.First = a
	}
	if o.Last.Metric == "" || !a.Time.Before(o.Last.Time) {
		o.Last = a
	}
	if o.Worst.Metric == "" || a.Score > o.Worst.Score {
		o.Worst = a
	}
}

// sortedKeys returns m's keys by metric, then kind.
func sortedKeys[V any](m map[key]V) []key {
	return slices.SortedFunc(maps.Keys(m), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Kind, b.Kind))
	})
}

// message builds the message of event for o.
func (w *watcher) message(e Event, o *open) Message {
	m := Message{Event: e, Metric: o.First.Metric, Kind: o.First.Kind, Since: o.since(), Latest: o.Last, Worst: o.Worst}
	name := "*" + slackEscape(m.Metric) + "*"
	switch e {
	case Started:
		m.Text = fmt.Sprintf(":rotating_light: %s: %s since %s: %s where %s was expected (normal %s to %s, score %s%s)",
			name, slackEscape(m.Kind), w.clock(m.Since), num(o.Last.Value), num(o.Last.Expected),
			num(o.Last.Lower), num(o.Last.Upper), num(o.Worst.Score), baselineNote(o.Last.Baseline))
	case Ended:
		until := o.Last.Time
		m.Until = &until
		m.Text = fmt.Sprintf(":white_check_mark: %s: the %s is over (anomalous buckets from %s to %s; worst %s where %s was expected, score %s)",
			name, slackEscape(m.Kind), w.clock(m.Since), w.clock(until), num(o.Worst.Value), num(o.Worst.Expected),
			num(o.Worst.Score))
	}
	return m
}

// clock prints t as a time of day in the watcher's zone, with the date in front.
func (w *watcher) clock(t time.Time) string {
	return t.In(w.loc).Format("2006-01-02 15:04 MST")
}

// num prints a value the way people read counts: integers without decimals, others with one,
// never in exponent form; NaN (no baseline) as "n/a".
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 0) || math.Abs(v) >= 1e15:
		return strconv.FormatFloat(v, 'g', 4, 64)
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control characters, as its
// message-formatting documentation asks.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// anomalyJSON is Anomaly as JSON: a NaN or an infinity (no baseline) is null, which JSON can hold.
type anomalyJSON struct {
	Time     time.Time  `json:"time"`
	Metric   string     `json:"metric"`
	Value    *float64   `json:"value"`
	Expected *float64   `json:"expected"`
	Lower    *float64   `json:"lower"`
	Upper    *float64   `json:"upper"`
	Score    *float64   `json:"score"`
	Kind     string     `json:"kind"`
	Started  *time.Time `json:"started,omitempty"`
	Baseline string     `json:"baseline,omitempty"`
}

// MarshalJSON writes a as an object whose non-finite numbers are null.
func (a Anomaly) MarshalJSON() ([]byte, error) {
	finite := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	var started *time.Time
	if !a.Started.IsZero() {
		started = &a.Started
	}
	return json.Marshal(anomalyJSON{a.Time, a.Metric, finite(a.Value), finite(a.Expected), finite(a.Lower),
		finite(a.Upper), finite(a.Score), a.Kind, started, a.Baseline})
}

// UnmarshalJSON reads what MarshalJSON writes, null as NaN.
func (a *Anomaly) UnmarshalJSON(b []byte) error {
	var j anomalyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	val := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	*a = Anomaly{j.Time, j.Metric, val(j.Value), val(j.Expected), val(j.Lower), val(j.Upper), val(j.Score), j.Kind,
		time.Time{}, j.Baseline}
	if j.Started != nil {
		a.Started = *j.Started
	}
	return nil
}
