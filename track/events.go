package track

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"

	"github.com/trackhq/track/internal/conventions"
)

// Attribute keys of the typed event fields. The collector's sampler hashes
// KeyUser, coarsens the location keys and scrubs the error keys; pgrollup
// stores KeyPage, KeyUser, KeyCountry and KeyRegion in columns of their own.
const (
	KeyPage        = conventions.URLPath
	KeyUser        = conventions.UserID
	KeyCountry     = conventions.GeoCountry
	KeyRegion      = conventions.GeoRegion
	KeyCity        = conventions.GeoLocality
	KeyClickTarget = conventions.ClickTarget
	KeyScrollDepth = conventions.ScrollDepth
	KeyErrorType   = conventions.ExceptionType
	KeyErrorMsg    = conventions.ExceptionMessage
	KeyStackTrace  = conventions.ExceptionStacktrace
)

// maxStackFrames bounds the stack trace an Error field captures.
const maxStackFrames = 32

// EventField is one part of an event's payload; build it with Page, User,
// Location, Click, Scroll, Error or Attr. The zero EventField adds nothing.
type EventField struct {
	attrs    []attribute.KeyValue
	body     string
	severity log.Severity
}

// Page records the page (URL path) the event happened on.
func Page(path string) EventField { return one(attribute.String(KeyPage, path)) }

// User records the user the event belongs to. The collector replaces the id
// with a keyed hash before it is stored, so users can be counted and followed
// through a funnel but not recovered.
func User(id string) EventField { return one(attribute.String(KeyUser, id)) }

// Location records where the user is. Empty parts are left out; by default
// the collector keeps country and region and drops the city.
func Location(country, region, city string) EventField {
	var f EventField
	for _, kv := range []attribute.KeyValue{
		attribute.String(KeyCountry, country), attribute.String(KeyRegion, region), attribute.String(KeyCity, city),
	} {
		if kv.Value.AsString() != "" {
			f.attrs = append(f.attrs, kv)
		}
	}
	return f
}

// Click records what was clicked, for example a button's id.
func Click(target string) EventField { return one(attribute.String(KeyClickTarget, target)) }

// Scroll records how far down the page the user scrolled, in percent.
func Scroll(depthPercent int) EventField { return one(attribute.Int(KeyScrollDepth, depthPercent)) }

// Error records err: its type, its message (also the event's body) and the
// stack trace of the goroutine calling Error, captured at the call. A nil
// err adds nothing. The event's severity becomes ERROR.
func Error(err error) EventField {
	if err == nil {
		return EventField{}
	}
	msg := err.Error()
	return EventField{
		attrs: []attribute.KeyValue{
			attribute.String(KeyErrorType, fmt.Sprintf("%T", err)),
			attribute.String(KeyErrorMsg, msg),
			attribute.String(KeyStackTrace, stackTrace(2)),
		},
		body:     msg,
		severity: log.SeverityError,
	}
}

// Attr records any other attribute.
func Attr(kv attribute.KeyValue) EventField { return one(kv) }

func one(kv attribute.KeyValue) EventField { return EventField{attrs: []attribute.KeyValue{kv}} }

// stackTrace formats the caller's stack like a Go panic does: a function
// line, then its file and line indented.
func stackTrace(skip int) string {
	pcs := make([]uintptr, maxStackFrames)
	n := runtime.Callers(skip+1, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s()\n\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	return b.String()
}

// Event emits a product event (a page view, a click, a form step, an error)
// as an OpenTelemetry log record with its event name set. The collector
// counts every event into the rollups as the counter "event.<name>" and keeps
// a sample of them for funnels. It never blocks and never panics: an invalid
// name is refused and counted in Stats; an event emitted before Start or
// after Shutdown is dropped and counted in Statistics.EventsDropped. It is
// safe for concurrent use.
func (t *Tracker) Event(ctx context.Context, name string, fields ...EventField) {
	if err := validateName(name); err != nil {
		t.refusals.refuse(fmt.Errorf("event: %w", err))
		return
	}
	p := t.live.Load()
	if p == nil {
		t.stats.events.dropped.Add(1)
		return
	}
	now := time.Now()
	var r log.Record
	r.SetEventName(name)
	r.SetTimestamp(now)
	r.SetObservedTimestamp(now)
	r.SetSeverity(log.SeverityInfo)
	for _, f := range fields {
		r.AddAttributes(f.attrs...)
		if f.body != "" {
			r.SetBody(attribute.StringValue(f.body))
		}
		if f.severity > r.Severity() {
			r.SetSeverity(f.severity)
		}
	}
	t.stats.eventsEmitted.Add(1)
	p.logger.Emit(ctx, r)
}

// Event emits a product event on the package-level tracker; see
// Tracker.Event.
func Event(ctx context.Context, name string, fields ...EventField) {
	std.Event(ctx, name, fields...)
}
