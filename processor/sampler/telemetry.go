package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/trackhq/track/processor/sampler/internal/metadata"
)

type signal uint8

const (
	signalMetrics signal = iota
	signalLogs
	numSignals
)

var signalNames = [numSignals]string{"metrics", "logs"}

type dropReason uint8

const (
	dropInvalidMetricName dropReason = iota
	dropInvalidValue
	dropMissingEventName
	dropTimestampInFuture
	dropTimestampTooOld
	dropCardinalityLimit
	dropInvalidEventName
	dropTimestampMissing
	dropTimestampInvalid
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"invalid_metric_name", "invalid_value", "missing_event_name",
	"timestamp_in_future", "timestamp_too_old", "cardinality_limit",
	"invalid_event_name", "timestamp_missing", "timestamp_invalid",
}

type removeReason uint8

const (
	removeDenyList removeReason = iota
	removeNotAllowed
	removeCountLimit
	removeLocation
	removeDuplicateKey
	removeInvalidKey
	numRemoveReasons
)

var removeReasonNames = [numRemoveReasons]string{
	"deny_list", "not_allowed", "count_limit", "location", "duplicate_key", "invalid_key",
}

// counts accumulates one batch's decisions, so the hot loop touches plain integers and the
// telemetry instruments are called once per batch. It is not safe for concurrent use.
type counts struct {
	dropped    [numDropReasons]int64
	dropNames  [numDropReasons]string // the first metric or event name dropped for each reason
	sampledOut int64
	overflow   int64
	removed    [numRemoveReasons]int64
	redacted   [numPatterns]int64
	custom     []int64
	hashed     int64
	truncated  [numTruncReasons]int64
	repaired   [numRepairReasons]int64

	// memo remembers the key decisions of the last top-level attribute map by position (not
	// telemetry, but per-batch state that travels with the counts). memo[:memoOK] are the keys of
	// a map that was checked: storable and distinct, so a map that repeats them needs no check.
	memo   [16]keyMemo
	memoOK int
	// lastEvent is the last event name found storable (not empty), so the next records with that
	// name need no check.
	lastEvent string
	// guards detect repeated keys, one per nesting depth of the maps being visited: the first
	// depths inline, deeper ones (rare) allocated when first needed.
	guards     [4]keyGuard
	deepGuards []keyGuard
}

// guard returns the keyGuard of the maps at depth, emptied.
func (c *counts) guard(depth int) *keyGuard {
	var g *keyGuard
	if depth < len(c.guards) {
		g = &c.guards[depth]
	} else {
		for len(c.deepGuards) <= depth-len(c.guards) {
			c.deepGuards = append(c.deepGuards, keyGuard{})
		}
		g = &c.deepGuards[depth-len(c.guards)]
	}
	g.reset()
	return g
}

type keyMemo struct {
	key  string
	info keyInfo
}

// drop counts n items dropped for reason r, and remembers name when it is the first for r.
func (c *counts) drop(r dropReason, name string, n int64) {
	if c.dropped[r] == 0 {
		c.dropNames[r] = name
	}
	c.dropped[r] += n
}

func (c *counts) addCustom(i int, n int64) {
	for len(c.custom) <= i {
		c.custom = append(c.custom, 0)
	}
	c.custom[i] += n
}

// telemetry records counts into the processor's own metrics. It is safe for concurrent use.
type telemetry struct {
	tb         *metadata.TelemetryBuilder
	dropOpts   [numSignals][numDropReasons]metric.AddOption
	signalOpts [numSignals]metric.AddOption
	removeOpts [numRemoveReasons]metric.AddOption
	redactOpts [numPatterns]metric.AddOption
	customOpts []metric.AddOption
	truncOpts  [numTruncReasons]metric.AddOption
	repairOpts [numRepairReasons]metric.AddOption
	refusals   *refusalLog
}

func reasonOpt(kvs ...attribute.KeyValue) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}

func newTelemetry(tb *metadata.TelemetryBuilder, custom []customPattern, refusals *refusalLog) *telemetry {
	t := &telemetry{tb: tb, refusals: refusals}
	for s := range numSignals {
		sig := attribute.String("otel.signal", signalNames[s])
		t.signalOpts[s] = reasonOpt(sig)
		for r := range numDropReasons {
			t.dropOpts[s][r] = reasonOpt(sig, attribute.String("reason", dropReasonNames[r]))
		}
	}
	for r := range numRemoveReasons {
		t.removeOpts[r] = reasonOpt(attribute.String("reason", removeReasonNames[r]))
	}
	for p := range numPatterns {
		t.redactOpts[p] = reasonOpt(attribute.String("reason", patternNames[p]))
	}
	for _, p := range custom {
		t.customOpts = append(t.customOpts, reasonOpt(attribute.String("reason", p.name)))
	}
	for r := range numTruncReasons {
		t.truncOpts[r] = reasonOpt(attribute.String("reason", truncReasonNames[r]))
	}
	for r := range numRepairReasons {
		t.repairOpts[r] = reasonOpt(attribute.String("reason", repairReasonNames[r]))
	}
	return t
}

func (t *telemetry) flush(ctx context.Context, sig signal, c *counts) {
	for r, n := range c.dropped {
		if n > 0 {
			t.tb.ProcessorSamplerDroppedItems.Add(ctx, n, t.dropOpts[sig][r])
		}
	}
	if c.sampledOut > 0 {
		t.tb.ProcessorSamplerSampledOutItems.Add(ctx, c.sampledOut, t.signalOpts[sig])
	}
	if c.overflow > 0 {
		t.tb.ProcessorSamplerOverflowPoints.Add(ctx, c.overflow)
	}
	addAll(ctx, t.tb.ProcessorSamplerRemovedAttributes, c.removed[:], t.removeOpts[:])
	addAll(ctx, t.tb.ProcessorSamplerRedactedValues, c.redacted[:], t.redactOpts[:])
	addAll(ctx, t.tb.ProcessorSamplerRedactedValues, c.custom, t.customOpts)
	if c.hashed > 0 {
		t.tb.ProcessorSamplerHashedValues.Add(ctx, c.hashed)
	}
	addAll(ctx, t.tb.ProcessorSamplerTruncatedValues, c.truncated[:], t.truncOpts[:])
	addAll(ctx, t.tb.ProcessorSamplerRepairedValues, c.repaired[:], t.repairOpts[:])
	t.refusals.log(sig, c)
}

// addAll adds each non-zero count n[i] to counter with the attributes opts[i].
func addAll(ctx context.Context, counter metric.Int64Counter, n []int64, opts []metric.AddOption) {
	for i, v := range n {
		if v > 0 && i < len(opts) {
			counter.Add(ctx, v, opts[i])
		}
	}
}
