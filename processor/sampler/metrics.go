package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"context"
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/processor/sampler/internal/cardinality"
	"github.com/trackhq/track/processor/sampler/internal/sampling"
	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// processMetrics runs every stage over md. It is safe for concurrent use. A resource that
// arrives without scope metrics (a sign of life from its source) is passed on with its
// attributes processed; one left without points by the stages is removed.
func (s *sampler) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	c := counts{}
	now := s.now()
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		arrivedEmpty := rm.ScopeMetrics().Len() == 0
		s.processAttrs(rm.Resource().Attributes(), 0, true, "", 1, &c)
		if s.validate {
			validate.RepairField(rm.SchemaUrl, rm.SetSchemaUrl, &c.Counts)
		}
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			s.processScope(sm.Scope(), &c)
			if s.validate {
				validate.RepairField(sm.SchemaUrl, sm.SetSchemaUrl, &c.Counts)
			}
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				return s.processMetric(m, now, &c)
			})
			return sm.Metrics().Len() == 0
		})
		return !arrivedEmpty && rm.ScopeMetrics().Len() == 0
	})
	s.tel.flush(ctx, tally.SignalMetrics, &c)
	if md.ResourceMetrics().Len() == 0 {
		return md, processorhelper.ErrSkipProcessingData
	}
	return md, nil
}

// pointCount returns the number of data points of m.
func pointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

// processScope processes a scope's attributes and, while validating, repairs its name and version.
func (s *sampler) processScope(sc pcommon.InstrumentationScope, c *counts) {
	s.processAttrs(sc.Attributes(), 0, true, "", 1, c)
	if s.validate {
		validate.RepairField(sc.Name, sc.SetName, &c.Counts)
		validate.RepairField(sc.Version, sc.SetVersion, &c.Counts)
	}
}

// metricCtx carries the per-metric decisions into the point loops.
type metricCtx struct {
	name     string
	now      uint64 // Unix ns
	latest   uint64 // the latest timestamp accepted without a closer look (refuseTime)
	series   *cardinality.SeriesSet
	prob     sampling.Probability
	sample   bool // sampling applies to this metric's points
	additive bool // delta sum or delta histogram: overflow points can be summed
}

// processMetric processes one metric and reports whether it is left without points.
func (s *sampler) processMetric(m pmetric.Metric, now time.Time, c *counts) bool {
	if s.validate {
		if !conventions.ValidName(m.Name()) {
			c.Drop(tally.DropInvalidMetricName, m.Name(), int64(pointCount(m)))
			return true
		}
		validate.RepairField(m.Description, m.SetDescription, &c.Counts)
		validate.RepairField(m.Unit, m.SetUnit, &c.Counts)
	}
	mc := metricCtx{name: m.Name(), now: uint64(now.UnixNano()), latest: math.MaxUint64}
	if s.validate {
		mc.latest = math.MaxInt64
		if s.maxFuture > 0 {
			mc.latest = min(mc.latest, mc.now+uint64(s.maxFuture))
		}
	}
	if s.card != nil {
		mc.series = s.card.ForMetric(m.Name(), now)
	}
	// A track heartbeat (a point of 0 saying its source is alive) is never sampled: sampling
	// it would save nothing and make a live source look stopped.
	sampled := s.metricSampling && m.Name() != conventions.Heartbeat
	if sampled {
		mc.prob = s.metricRules.Lookup(m.Name())
	}
	switch m.Type() {
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		mc.additive = sum.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		mc.sample = sampled && mc.additive && !mc.prob.All
		s.processNumberPoints(sum.DataPoints(), sum.IsMonotonic(), &mc, c)
		return sum.DataPoints().Len() == 0
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		s.processNumberPoints(dps, false, &mc, c)
		return dps.Len() == 0
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		mc.additive = h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		mc.sample = sampled && mc.additive && !mc.prob.All
		s.processHistogramPoints(h.DataPoints(), &mc, c)
		return h.DataPoints().Len() == 0
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		mc.additive = h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := h.DataPoints()
		dps.RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			if s.refuseTime(dp.Timestamp(), &mc, c) {
				return true
			}
			s.repairExemplars(dp.Exemplars(), c)
			return s.overflowAction(dp.Attributes(), &mc, c) == pointDrop
		})
		return dps.Len() == 0
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		dps.RemoveIf(func(dp pmetric.SummaryDataPoint) bool {
			if s.refuseTime(dp.Timestamp(), &mc, c) {
				return true
			}
			return s.overflowAction(dp.Attributes(), &mc, c) == pointDrop
		})
		return dps.Len() == 0
	}
	return false
}

type pointAction uint8

const (
	pointKeep     pointAction = iota // the point keeps its own series
	pointOverflow                    // the point was relabelled into the overflow series
	pointDrop                        // the point was dropped by the cap (non-additive)
)

// refuseTime reports whether a point's timestamp ts is refused (timestampReason), and counts it.
// A timestamp in [1, mc.latest] costs one comparison.
func (s *sampler) refuseTime(ts pcommon.Timestamp, mc *metricCtx, c *counts) bool {
	if uint64(ts)-1 < mc.latest {
		return false
	}
	return s.refuseTimeSlow(ts, mc, c)
}

func (s *sampler) refuseTimeSlow(ts pcommon.Timestamp, mc *metricCtx, c *counts) bool {
	if !s.validate {
		return false
	}
	r, bad := validate.TimestampReason(uint64(ts), mc.now, uint64(s.maxFuture))
	if bad {
		c.Drop(r, mc.name, 1)
	}
	return bad
}

// repairExemplars makes the exemplars' filtered attributes storable (they are not scrubbed).
func (s *sampler) repairExemplars(exs pmetric.ExemplarSlice, c *counts) {
	if exs.Len() > 0 && s.validate {
		s.repairExemplarAttrs(exs, c)
	}
}

func (s *sampler) repairExemplarAttrs(exs pmetric.ExemplarSlice, c *counts) {
	for i := 0; i < exs.Len(); i++ {
		validate.RepairMap(exs.At(i).FilteredAttributes(), &c.Counts)
	}
}

// overflowAction processes the attributes of a point and applies the cardinality cap. Points past
// the cap get the overflow attributes when additive, and are counted as dropped otherwise.
func (s *sampler) overflowAction(attrs pcommon.Map, mc *metricCtx, c *counts) pointAction {
	h := s.processAttrs(attrs, s.maxAttrs, true, "", 1, c)
	if s.card == nil || s.card.Admit(mc.series, h) {
		return pointKeep
	}
	if !mc.additive {
		c.Drop(tally.DropCardinalityLimit, mc.name, 1)
		return pointDrop
	}
	c.Overflow++
	attrs.Clear()
	attrs.PutBool(overflowKey, true)
	return pointOverflow
}

// sampleOut decides whether a point of a sampled metric is dropped by sampling, and counts it.
func (s *sampler) sampleOut(mc *metricCtx, c *counts) bool {
	if !mc.sample || mc.prob.Keep(s.rand()) {
		return false
	}
	c.SampledOut++
	return true
}

// invalidMonotonic reports whether a monotonic sum point has a NaN, infinite or negative value.
func invalidMonotonic(dp pmetric.NumberDataPoint) bool {
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		return dp.IntValue() < 0
	case pmetric.NumberDataPointValueTypeDouble:
		v := dp.DoubleValue()
		return math.IsNaN(v) || math.IsInf(v, 0) || v < 0
	}
	return false
}

func (s *sampler) processNumberPoints(dps pmetric.NumberDataPointSlice, monotonic bool, mc *metricCtx, c *counts) {
	var ovf pmetric.NumberDataPoint
	hasOvf := false
	dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool {
		if s.refuseTime(dp.Timestamp(), mc, c) {
			return true
		}
		if s.validate && monotonic && invalidMonotonic(dp) {
			c.Drop(tally.DropInvalidValue, mc.name, 1)
			return true
		}
		s.repairExemplars(dp.Exemplars(), c)
		if s.sampleOut(mc, c) {
			return true
		} else if mc.sample {
			sampling.ScaleNumberPoint(dp, mc.prob, s.rand)
		}
		act := s.overflowAction(dp.Attributes(), mc, c)
		if act == pointOverflow && !hasOvf {
			ovf, hasOvf, act = dp, true, pointKeep
		} else if act == pointOverflow {
			mergeNumberPoint(ovf, dp)
			return true
		}
		return act == pointDrop
	})
}

// timed is a data point with a time range.
type timed interface {
	StartTimestamp() pcommon.Timestamp
	Timestamp() pcommon.Timestamp
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}

// mergeTimes widens dst's time range to cover src's.
func mergeTimes[P timed](dst, src P) {
	if st := src.StartTimestamp(); st != 0 && (dst.StartTimestamp() == 0 || st < dst.StartTimestamp()) {
		dst.SetStartTimestamp(st)
	}
	if ts := src.Timestamp(); ts > dst.Timestamp() {
		dst.SetTimestamp(ts)
	}
}

// mergeNumberPoint adds src's value into dst (delta sums), widening to double when types differ.
func mergeNumberPoint(dst, src pmetric.NumberDataPoint) {
	if dst.ValueType() == pmetric.NumberDataPointValueTypeInt && src.ValueType() == pmetric.NumberDataPointValueTypeInt {
		dst.SetIntValue(dst.IntValue() + src.IntValue())
	} else {
		dst.SetDoubleValue(numberAsFloat(dst) + numberAsFloat(src))
	}
	mergeTimes(dst, src)
}

func numberAsFloat(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func (s *sampler) processHistogramPoints(dps pmetric.HistogramDataPointSlice, mc *metricCtx, c *counts) {
	var ovf pmetric.HistogramDataPoint
	hasOvf := false
	dps.RemoveIf(func(dp pmetric.HistogramDataPoint) bool {
		if s.refuseTime(dp.Timestamp(), mc, c) {
			return true
		}
		s.repairExemplars(dp.Exemplars(), c)
		if s.sampleOut(mc, c) {
			return true
		} else if mc.sample {
			sampling.ScaleHistogramPoint(dp, mc.prob, s.rand)
		}
		switch s.overflowAction(dp.Attributes(), mc, c) {
		case pointDrop:
			return true
		case pointOverflow:
			if !hasOvf {
				ovf, hasOvf = dp, true
				return false
			}
			// Points with other bucket bounds stay separate overflow points.
			return mergeHistogramPoint(ovf, dp)
		}
		return false
	})
}

// mergeHistogramPoint adds src into dst when both have the same explicit bounds, and reports
// whether it did.
func mergeHistogramPoint(dst, src pmetric.HistogramDataPoint) bool {
	if !dst.ExplicitBounds().Equal(src.ExplicitBounds()) || dst.BucketCounts().Len() != src.BucketCounts().Len() {
		return false
	}
	db, sb := dst.BucketCounts(), src.BucketCounts()
	for i := 0; i < db.Len(); i++ {
		db.SetAt(i, db.At(i)+sb.At(i))
	}
	dst.SetCount(dst.Count() + src.Count())
	if src.HasSum() {
		dst.SetSum(dst.Sum() + src.Sum())
	}
	if src.HasMin() && (!dst.HasMin() || src.Min() < dst.Min()) {
		dst.SetMin(src.Min())
	}
	if src.HasMax() && (!dst.HasMax() || src.Max() > dst.Max()) {
		dst.SetMax(src.Max())
	}
	mergeTimes(dst, src)
	return true
}
