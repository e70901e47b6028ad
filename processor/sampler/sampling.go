package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// probability is a keep probability prepared for fast decisions.
type probability struct {
	p         float64
	all       bool    // p == 1: keep everything
	threshold uint64  // keep when a uniform 64-bit value is below it
	adjusted  float64 // 1/p, the Horvitz–Thompson weight of a kept item
}

func newProbability(p float64) probability {
	if p >= 1 {
		return probability{p: 1, all: true, threshold: math.MaxUint64, adjusted: 1}
	}
	t := math.Ldexp(p, 64)
	th := uint64(math.MaxUint64)
	if t < math.Ldexp(1, 64) {
		th = uint64(t)
	}
	return probability{p: p, threshold: th, adjusted: 1 / p}
}

// keep decides for the uniform 64-bit value u. Decisions are nested: whatever is kept at p is also
// kept at any larger p, so a user kept for a 10% rule is kept for a 50% rule too.
func (pr probability) keep(u uint64) bool {
	return pr.all || u < pr.threshold
}

// ruleSet maps event or metric names to probabilities; the first matching rule wins. It is safe for
// concurrent use.
type ruleSet struct {
	exact    map[string]int // name -> rule index
	prefixes []prefixRule
	probs    []probability
	def      probability
}

type prefixRule struct {
	prefix string
	index  int
}

func newRuleSet(def float64, rules []SamplingRule) *ruleSet {
	rs := &ruleSet{exact: map[string]int{}, def: newProbability(def)}
	for i, r := range rules {
		rs.probs = append(rs.probs, newProbability(r.Probability))
		if prefix, ok := strings.CutSuffix(r.Name, "*"); ok {
			rs.prefixes = append(rs.prefixes, prefixRule{prefix, i})
		} else if _, dup := rs.exact[r.Name]; !dup {
			rs.exact[r.Name] = i
		}
	}
	return rs
}

// lookup returns the probability for name.
func (rs *ruleSet) lookup(name string) probability {
	best := -1
	if i, ok := rs.exact[name]; ok {
		best = i
	}
	for _, pr := range rs.prefixes {
		if best >= 0 && pr.index > best {
			break
		}
		if strings.HasPrefix(name, pr.prefix) {
			best = pr.index
			break
		}
	}
	if best < 0 {
		return rs.def
	}
	return rs.probs[best]
}

// valueKey returns a uniform 64-bit key for v that is the same in every collector instance.
func valueKey(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return mix64(xxhash.Sum64String(v.Str()))
	case pcommon.ValueTypeInt:
		return mix64(xxhash.Sum64String("i") ^ uint64(v.Int()))
	default:
		return mix64(xxhash.Sum64String(v.AsString()))
	}
}

// scaleRound returns x/p rounded to an integer at random so that its expectation is exactly x/p.
func scaleRound(x float64, adjusted float64, u uint64) float64 {
	y := x * adjusted
	f := math.Floor(y)
	if frac := y - f; frac > 0 && float64(u>>11)/(1<<53) < frac {
		f++
	}
	return f
}

// scaleNumberPoint multiplies a kept point's value by 1/p (int values with unbiased random rounding).
func scaleNumberPoint(dp pmetric.NumberDataPoint, pr probability, rnd func() uint64) {
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		v := scaleRound(float64(dp.IntValue()), pr.adjusted, rnd())
		if v >= math.MaxInt64 {
			dp.SetIntValue(math.MaxInt64)
		} else if v <= math.MinInt64 {
			dp.SetIntValue(math.MinInt64)
		} else {
			dp.SetIntValue(int64(v))
		}
	case pmetric.NumberDataPointValueTypeDouble:
		dp.SetDoubleValue(dp.DoubleValue() * pr.adjusted)
	}
}

// scaleHistogramPoint multiplies a kept histogram's counts and sum by 1/p. Bucket counts are rounded
// at random without bias, and the count is kept equal to their sum.
func scaleHistogramPoint(dp pmetric.HistogramDataPoint, pr probability, rnd func() uint64) {
	bc := dp.BucketCounts()
	if bc.Len() > 0 {
		var total uint64
		for i := 0; i < bc.Len(); i++ {
			v := scaleRound(float64(bc.At(i)), pr.adjusted, rnd())
			n := uint64(math.MaxUint64)
			if v < math.Ldexp(1, 64) {
				n = uint64(v)
			}
			bc.SetAt(i, n)
			total += n
		}
		dp.SetCount(total)
	} else {
		v := scaleRound(float64(dp.Count()), pr.adjusted, rnd())
		if v < math.Ldexp(1, 64) {
			dp.SetCount(uint64(v))
		}
	}
	if dp.HasSum() {
		dp.SetSum(dp.Sum() * pr.adjusted)
	}
}
