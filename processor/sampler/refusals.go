package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// refusalInterval is the shortest time between two log lines for the same signal and reason.
const refusalInterval = time.Second

// maxLoggedNameLen bounds the metric or event name written in a refusal log line, in bytes.
const maxLoggedNameLen = 256

var refusalMessages = [tally.NumSignals]string{
	"sampler refused data points (at most one line per reason per second; every refusal is counted in otelcol_processor_sampler_dropped_items)",
	"sampler refused log records (at most one line per reason per second; every refusal is counted in otelcol_processor_sampler_dropped_items)",
}

var refusalNameFields = [tally.NumSignals]string{"metric", "event"}

// refusalHints tells the sender what to change, per reason.
var refusalHints = [tally.NumDropReasons]string{
	tally.DropInvalidMetricName: "a metric name must start with an ASCII letter, hold only ASCII letters, digits, '_', '.', '-' or '/', and be at most 255 bytes (OpenTelemetry instrument name syntax)",
	tally.DropInvalidValue:      "a monotonic sum cannot take a negative, NaN or infinite value",
	tally.DropMissingEventName:  "a log record needs an event name (LogRecord.event_name) to be counted as a product event",
	tally.DropTimestampInFuture: "the timestamp is further ahead of the collector's clock than validation.max_future",
	tally.DropTimestampTooOld:   "the timestamp is older than validation.max_age",
	tally.DropCardinalityLimit:  "the metric has more attribute sets in this window than cardinality.max_series, and this kind of point cannot be folded into the overflow series",
	tally.DropInvalidEventName:  "an event name must be at most 255 bytes once invalid UTF-8 and NUL bytes are replaced",
	tally.DropTimestampMissing:  "the timestamp is not set (0)",
	tally.DropTimestampInvalid:  "the timestamp is past 2^63-1 ns, which reads as before 1970 (or after 2262) in signed time",
}

// refusalLog writes a warning naming a refused metric or event and the reason, at most once per
// signal, reason and refusalInterval, so that a sender that keeps sending bad data cannot flood the
// log. It is safe for concurrent use.
type refusalLog struct {
	logger *zap.Logger
	now    func() time.Time
	last   [tally.NumSignals][tally.NumDropReasons]atomic.Int64 // Unix ns of the last line
}

// allow reports whether a line for (sig, r) may be written at now, and if so records it.
func (l *refusalLog) allow(sig tally.Signal, r tally.DropReason, now int64) bool {
	last := &l.last[sig][r]
	prev := last.Load()
	if prev != 0 && now-prev < int64(refusalInterval) {
		return false
	}
	return last.CompareAndSwap(prev, now)
}

// log writes the lines for the refusals counted in c.
func (l *refusalLog) log(sig tally.Signal, c *counts) {
	var now int64
	for r, n := range c.Dropped {
		if n == 0 {
			continue
		}
		if now == 0 {
			now = l.now().UnixNano()
		}
		if !l.allow(sig, tally.DropReason(r), now) {
			continue
		}
		l.logger.Warn(refusalMessages[sig],
			zap.String("reason", tally.DropReasonNames[r]),
			zap.String(refusalNameFields[sig], loggable(c.DropNames[r])),
			zap.Int64("count", n),
			zap.String("hint", refusalHints[r]))
	}
}

// loggable returns s with invalid UTF-8 and NUL bytes replaced, cut to maxLoggedNameLen bytes.
func loggable(s string) string {
	if len(s) > maxLoggedNameLen {
		s = validate.TruncateUTF8(s, maxLoggedNameLen)
	}
	if validate.NeedsRepair(s) {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, string(utf8.RuneError)), "\x00", string(utf8.RuneError))
	}
	return s
}
