package pgrollup

import (
	"context"
	"errors"
	"github.com/trackhq/track/exporter/pgrollup/internal/requestkey"
	"github.com/trackhq/track/internal/conventions"
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// The reasons a log record (an event) is refused, as indexes into eventReasonNames, whose values
// are the `reason` attribute of the exporter_pgrollup_events_refused telemetry metric.
const (
	erMissingName = iota
	erBadAdjustedCount
	erTooOld
	erFuture
	erNameTooLong
	numEventReasons
)

var eventReasonNames = [numEventReasons]string{"missing_event_name", "bad_adjusted_count", "too_old", "future", "name_too_long"}

// Errors describing refused events; they are only logged (at most once per event name and
// reason), and the events counted in telemetry by reason, while the rest of the request is
// written. No caller sees them, so they are not exported.
var (
	// errMissingEventName refuses a log record without an event name.
	errMissingEventName = errors.New("log records without an event name are refused: pgrollup counts product events " +
		"(track.Event, or any OTel log record with its event name set)")
	// errBadAdjustedCount refuses an event whose sampling.adjusted_count is not a positive number of
	// at most 2^53.
	errBadAdjustedCount = errors.New("events whose sampling.adjusted_count is not a positive number of at most 2^53 are refused")
	// errEventOutOfRange refuses events older than the longest retention or more than
	// conventions.MaxFuture (1 hour) in the future.
	errEventOutOfRange = errors.New("events older than the longest retention or more than 1 hour in the future are refused")
)

var eventReasonErrs = [numEventReasons]error{errMissingEventName, errBadAdjustedCount, errEventOutOfRange, errEventOutOfRange, errNameTooLong}

// The log record attributes that have columns of their own in the events table.
const (
	attrPage          = conventions.URLPath
	attrUser          = conventions.UserID
	attrCountry       = conventions.GeoCountry
	attrRegion        = conventions.GeoRegion
	attrAdjustedCount = conventions.AdjustedCount
	// eventMetricPrefix prefixes an event's name to give the metric it counts into.
	eventMetricPrefix = "event."
)

// eventRefusals counts refused events by reason, and remembers a few event names per reason.
type eventRefusals struct {
	n     [numEventReasons]int64
	names [numEventReasons][]string
}

func (r *eventRefusals) add(reason int, name string) {
	r.n[reason]++
	if len(r.names[reason]) < 16 {
		for _, n := range r.names[reason] {
			if n == name {
				return
			}
		}
		r.names[reason] = append(r.names[reason], name)
	}
}

// pushLogs counts the events of ld into the rollups (metric event.<name>, weighted by
// sampling.adjusted_count) and stores them raw in the events table, in the same flush transaction
// and under the same per-request idempotency key as metrics. It returns once that flush has
// committed. Refused records are counted and logged; they never fail the request. Its errors are
// those of pushMetrics.
func (e *rollupExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	if err := e.awaitReady(ctx); err != nil {
		return err
	}
	rls := ld.ResourceLogs()
	e.live.note(e.now(), func(yield func(pcommon.Resource)) {
		for i := range rls.Len() {
			yield(rls.At(i).Resource())
		}
	})
	p := e.parsers.Get().(*parser)
	it, ref := p.parseLogs(ld, e.now(), e.cfg.Retention.longest(), e.cfg.Retention.Events.Duration())
	rep := p.rep
	e.parsers.Put(p)
	e.reportEventRefusals(ctx, &ref)
	e.reportRepairs(ctx, &rep)
	if it == nil {
		return nil
	}
	key, err := requestkey.Logs(ld)
	if err != nil {
		return err
	}
	it.key = key
	e.telemetry.ExporterPgrollupEventsAccepted.Add(ctx, int64(it.points))
	return e.submit(ctx, it)
}

// emptyAttrs is the (empty) point attributes of an event's series: an event's series is its
// metric, its service and the kept resource attributes, so rollup rows grow with event names ×
// services × buckets. Per-event attributes (page, user, country, ...) live in the events table.
var emptyAttrs = pcommon.NewMap()

// parseLogs aggregates the events of ld by (series, minute), builds their raw rows, and counts the
// refused records. now and longest bound the accepted timestamps; events older than keepRaw are
// counted but not stored raw. It returns a nil item when no record is countable.
func (p *parser) parseLogs(ld plog.Logs, now time.Time, longest, keepRaw time.Duration) (*item, eventRefusals) {
	var ref eventRefusals
	p.begin(now, longest)
	defer p.end()
	rawOldest := now.Add(-keepRaw).UnixNano()
	var it *item
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		service := p.readResource(rl.Resource())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				name := lr.EventName()
				switch {
				case name == "":
					ref.add(erMissingName, "")
					continue
				case len(name) > maxNameBytes:
					ref.add(erNameTooLong, name)
					continue
				}
				name = p.rep.text(name, maxNameBytes)
				weight := 1.0
				if v, ok := lr.Attributes().Get(attrAdjustedCount); ok {
					switch v.Type() {
					case pcommon.ValueTypeDouble:
						weight = v.Double()
					case pcommon.ValueTypeInt:
						weight = float64(v.Int())
					default:
						weight = math.NaN()
					}
					if math.IsNaN(weight) || weight <= 0 || weight > maxDelta {
						ref.add(erBadAdjustedCount, name)
						continue
					}
				}
				ts := int64(lr.Timestamp())
				if ts == 0 {
					ts = int64(lr.ObservedTimestamp())
				}
				switch {
				case ts < p.oldest:
					ref.add(erTooOld, name)
					continue
				case ts > p.newest:
					ref.add(erFuture, name)
					continue
				}
				if it == nil {
					it = p.newItem(ld.LogRecordCount())
				}
				p.count(it, eventMetricPrefix+name, service, emptyAttrs, ts, weight)
				it.events = append(it.events, p.eventRow(lr, name, service, ts, weight, ts < rawOldest))
			}
		}
	}
	return it, ref
}

// eventRow builds the raw row of an accepted event.
func (p *parser) eventRow(lr plog.LogRecord, name, service string, ts int64, weight float64, beyond bool) eventRow {
	r := eventRow{
		time:            time.Unix(0, ts).UTC(),
		day:             floorDiv(ts, int64(24*time.Hour)),
		name:            name,
		service:         service,
		adjustedCount:   weight,
		beyondRetention: beyond,
	}
	b := make([]byte, 0, 128)
	b = append(b, '{')
	first := true
	lr.Attributes().Range(func(k string, v pcommon.Value) bool {
		switch k {
		case attrPage:
			r.page, r.hasPage = p.rep.text(v.AsString(), maxStringBytes), true
		case attrUser:
			r.user, r.hasUser = p.rep.text(v.AsString(), maxKeyBytes), true
		case attrCountry:
			r.country, r.hasCountry = p.rep.text(v.AsString(), maxStringBytes), true
		case attrRegion:
			r.region, r.hasRegion = p.rep.text(v.AsString(), maxStringBytes), true
		case attrAdjustedCount:
		default:
			if !first {
				b = append(b, ',')
			}
			first = false
			b = p.rep.jsonString(b, k, maxKeyBytes)
			b = append(b, ':')
			b = p.rep.jsonValue(b, v)
		}
		return true
	})
	r.attributes = append(b, '}')
	if body := lr.Body(); body.Type() != pcommon.ValueTypeEmpty {
		r.body, r.hasBody = p.rep.text(body.AsString(), maxStringBytes), true
	}
	return r
}

// reportEventRefusals counts refused events by reason and logs each (reason, event name) once.
func (e *rollupExporter) reportEventRefusals(ctx context.Context, ref *eventRefusals) {
	for r := range numEventReasons {
		if ref.n[r] == 0 {
			continue
		}
		e.telemetry.ExporterPgrollupEventsRefused.Add(ctx, ref.n[r],
			metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", eventReasonNames[r]))))
		for _, name := range ref.names[r] {
			name = displayName(name)
			if !e.logOnce("event\x00" + eventReasonNames[r] + "\x00" + name) {
				continue
			}
			e.logger.Warn("refusing events (logged once per event name and reason)",
				zap.String("event", name), zap.String("reason", eventReasonNames[r]), zap.Error(eventReasonErrs[r]))
		}
	}
}
