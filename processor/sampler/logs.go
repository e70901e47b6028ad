package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"context"
	"math"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/trackhq/track/processor/sampler/internal/sampling"
	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// processLogs runs every stage over ld. It is safe for concurrent use.
func (s *sampler) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	c := counts{}
	now := s.recordTimes(s.now())
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		s.processAttrs(rl.Resource().Attributes(), 0, true, "", 1, &c)
		if s.validate {
			validate.RepairField(rl.SchemaUrl, rl.SetSchemaUrl, &c.Counts)
		}
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			s.processScope(sl.Scope(), &c)
			if s.validate {
				validate.RepairField(sl.SchemaUrl, sl.SetSchemaUrl, &c.Counts)
			}
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				return s.processLogRecord(lr, now, &c)
			})
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	s.tel.flush(ctx, tally.SignalLogs, &c)
	if ld.ResourceLogs().Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

// recordWindow is the time against which a batch's records are validated: now and the range of
// timestamps accepted without a closer look (refuseRecord).
type recordWindow struct {
	now            uint64 // Unix ns
	oldest, latest uint64 // Unix ns
}

// recordTimes returns the window of a batch processed at now.
func (s *sampler) recordTimes(now time.Time) recordWindow {
	w := recordWindow{now: uint64(now.UnixNano()), oldest: 1, latest: math.MaxInt64}
	if s.maxFuture > 0 {
		w.latest = min(w.latest, w.now+uint64(s.maxFuture))
	}
	if s.maxAge > 0 && w.now > uint64(s.maxAge) {
		w.oldest = w.now - uint64(s.maxAge)
	}
	return w
}

// processLogRecord processes one record and reports whether it is dropped.
func (s *sampler) processLogRecord(lr plog.LogRecord, w recordWindow, c *counts) bool {
	if s.validate {
		// The common record (a short ASCII name, a timestamp in the window, no severity text)
		// costs a few comparisons.
		ts, name := uint64(lr.Timestamp()), lr.EventName()
		if ts-w.oldest > w.latest-w.oldest || name == "" || name != c.lastEvent && !s.goodEventName(name, c) ||
			lr.SeverityText() != "" {
			if s.refuseRecord(lr, w.now, c) {
				return true
			}
		}
	}
	var pr sampling.Probability
	if s.logSampling {
		pr = s.logRules.Lookup(lr.EventName())
		if !pr.Keep(s.logKey(lr)) {
			c.SampledOut++
			return true
		}
	}
	s.processAttrs(lr.Attributes(), s.maxAttrs, true, "", 1, c)
	switch {
	case s.scrubBodies:
		s.scrubValue(lr.Body(), "", 0, c)
	case s.validate:
		validate.RepairValue(lr.Body(), s.maxNestedLen, 0, &c.Counts)
	}
	if s.logSampling {
		setAdjustedCount(lr.Attributes(), pr.Adjusted)
	}
	return false
}

// goodEventName reports whether name needs neither repair nor refusal, and remembers it: records
// of a batch mostly repeat a few names.
func (s *sampler) goodEventName(name string, c *counts) bool {
	if name == "" || len(name) > validate.MaxEventNameLen || validate.NeedsRepair(name) {
		return false
	}
	c.lastEvent = name
	return true
}

// refuseRecord validates a record's event name and timestamp, and reports whether the record is
// refused (and counted). The event name is repaired first: a name that is still invalid once
// repaired (too long) is refused. The observed timestamp stands in for a missing timestamp.
func (s *sampler) refuseRecord(lr plog.LogRecord, now uint64, c *counts) bool {
	name := lr.EventName()
	if validate.NeedsRepair(name) {
		name = validate.RepairString(name, &c.Counts)
		lr.SetEventName(name)
	}
	if s.requireEventName && name == "" {
		c.Drop(tally.DropMissingEventName, "", 1)
		return true
	}
	if len(name) > validate.MaxEventNameLen {
		c.Drop(tally.DropInvalidEventName, name, 1)
		return true
	}
	ts := uint64(lr.Timestamp())
	if ts == 0 {
		ts = uint64(lr.ObservedTimestamp())
	}
	if r, bad := validate.TimestampReason(ts, now, uint64(s.maxFuture)); bad {
		c.Drop(r, name, 1)
		return true
	}
	if s.maxAge > 0 && ts < now && now-ts > uint64(s.maxAge) {
		c.Drop(tally.DropTimestampTooOld, name, 1)
		return true
	}
	if st := lr.SeverityText(); validate.NeedsRepair(st) {
		lr.SetSeverityText(validate.RepairString(st, &c.Counts))
	}
	return false
}

// logKey returns the uniform 64-bit value the sampling decision of lr is made on.
func (s *sampler) logKey(lr plog.LogRecord) uint64 {
	if s.logBy == SampleByAttribute {
		if v, ok := lr.Attributes().Get(s.logAttr); ok && v.Type() != pcommon.ValueTypeEmpty && !(v.Type() == pcommon.ValueTypeStr && v.Str() == "") {
			return sampling.ValueKey(v)
		}
	}
	if s.logBy != SampleByRandom {
		if tid := lr.TraceID(); !tid.IsEmpty() {
			return sampling.Mix64(xxhash.Sum64(tid[:]))
		}
	}
	return s.rand()
}

// setAdjustedCount multiplies the record's sampling.adjusted_count (1 when absent) by adjusted, so
// that samplers in series compose.
func setAdjustedCount(attrs pcommon.Map, adjusted float64) {
	prev := 1.0
	if v, ok := attrs.Get(adjustedCountKey); ok {
		switch v.Type() {
		case pcommon.ValueTypeDouble:
			if d := v.Double(); d > 0 {
				prev = d
			}
		case pcommon.ValueTypeInt:
			if n := v.Int(); n > 0 {
				prev = float64(n)
			}
		}
	}
	attrs.PutDouble(adjustedCountKey, prev*adjusted)
}
