package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/trackhq/track/processor/sampler/internal/metadata"
	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// counts is one batch's state: what its stages count (tally.Counts, added to the telemetry once
// per batch) and what the processing of one attribute map hands to the next. It is not safe for
// concurrent use.
type counts struct {
	tally.Counts

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
	guards     [4]validate.KeyGuard
	deepGuards []validate.KeyGuard
}

// guard returns the keyGuard of the maps at depth, emptied.
func (c *counts) guard(depth int) *validate.KeyGuard {
	var g *validate.KeyGuard
	if depth < len(c.guards) {
		g = &c.guards[depth]
	} else {
		for len(c.deepGuards) <= depth-len(c.guards) {
			c.deepGuards = append(c.deepGuards, validate.KeyGuard{})
		}
		g = &c.deepGuards[depth-len(c.guards)]
	}
	g.Reset()
	return g
}

type keyMemo struct {
	key  string
	info keyInfo
}

// telemetry records counts into the processor's own metrics. It is safe for concurrent use.
type telemetry struct {
	tb         *metadata.TelemetryBuilder
	dropOpts   [tally.NumSignals][tally.NumDropReasons]metric.AddOption
	signalOpts [tally.NumSignals]metric.AddOption
	removeOpts [tally.NumRemoveReasons]metric.AddOption
	redactOpts [tally.NumPatterns]metric.AddOption
	customOpts []metric.AddOption
	truncOpts  [tally.NumTruncReasons]metric.AddOption
	repairOpts [tally.NumRepairReasons]metric.AddOption
	refusals   *refusalLog
}

func reasonOpt(kvs ...attribute.KeyValue) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}

func newTelemetry(tb *metadata.TelemetryBuilder, custom []string, refusals *refusalLog) *telemetry {
	t := &telemetry{tb: tb, refusals: refusals}
	for s := range tally.NumSignals {
		sig := attribute.String("otel.signal", tally.SignalNames[s])
		t.signalOpts[s] = reasonOpt(sig)
		for r := range tally.NumDropReasons {
			t.dropOpts[s][r] = reasonOpt(sig, attribute.String("reason", tally.DropReasonNames[r]))
		}
	}
	for r := range tally.NumRemoveReasons {
		t.removeOpts[r] = reasonOpt(attribute.String("reason", tally.RemoveReasonNames[r]))
	}
	for p := range tally.NumPatterns {
		t.redactOpts[p] = reasonOpt(attribute.String("reason", tally.PatternNames[p]))
	}
	for _, name := range custom {
		t.customOpts = append(t.customOpts, reasonOpt(attribute.String("reason", name)))
	}
	for r := range tally.NumTruncReasons {
		t.truncOpts[r] = reasonOpt(attribute.String("reason", tally.TruncReasonNames[r]))
	}
	for r := range tally.NumRepairReasons {
		t.repairOpts[r] = reasonOpt(attribute.String("reason", tally.RepairReasonNames[r]))
	}
	return t
}

func (t *telemetry) flush(ctx context.Context, sig tally.Signal, c *counts) {
	for r, n := range c.Dropped {
		if n > 0 {
			t.tb.ProcessorSamplerDroppedItems.Add(ctx, n, t.dropOpts[sig][r])
		}
	}
	if c.SampledOut > 0 {
		t.tb.ProcessorSamplerSampledOutItems.Add(ctx, c.SampledOut, t.signalOpts[sig])
	}
	if c.Overflow > 0 {
		t.tb.ProcessorSamplerOverflowPoints.Add(ctx, c.Overflow)
	}
	addAll(ctx, t.tb.ProcessorSamplerRemovedAttributes, c.Removed[:], t.removeOpts[:])
	addAll(ctx, t.tb.ProcessorSamplerRedactedValues, c.Redacted[:], t.redactOpts[:])
	addAll(ctx, t.tb.ProcessorSamplerRedactedValues, c.Custom, t.customOpts)
	if c.Hashed > 0 {
		t.tb.ProcessorSamplerHashedValues.Add(ctx, c.Hashed)
	}
	addAll(ctx, t.tb.ProcessorSamplerTruncatedValues, c.Truncated[:], t.truncOpts[:])
	addAll(ctx, t.tb.ProcessorSamplerRepairedValues, c.Repaired[:], t.repairOpts[:])
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
