package sampling // import "github.com/trackhq/track/processor/sampler/internal/sampling"

import (
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Probability is a keep Probability prepared for fast decisions.
type Probability struct {
	P         float64 // the keep probability, in (0,1]
	All       bool    // P == 1: keep everything
	Threshold uint64  // keep when a uniform 64-bit value is below it
	Adjusted  float64 // 1/P, the Horvitz–Thompson weight of a kept item
}

// NewProbability prepares the keep probability p; p >= 1 keeps everything.
func NewProbability(p float64) Probability {
	if p >= 1 {
		return Probability{P: 1, All: true, Threshold: math.MaxUint64, Adjusted: 1}
	}
	t := math.Ldexp(p, 64)
	th := uint64(math.MaxUint64)
	if t < math.Ldexp(1, 64) {
		th = uint64(t)
	}
	return Probability{P: p, Threshold: th, Adjusted: 1 / p}
}

// Keep decides for the uniform 64-bit value u. Decisions are nested: whatever is kept at p is also
// kept at any larger p, so a user kept for a 10% rule is kept for a 50% rule too.
func (pr Probability) Keep(u uint64) bool {
	return pr.All || u < pr.Threshold
}

// RuleSet maps event or metric names to probabilities; the first matching rule wins. It is safe for
// concurrent use.
type RuleSet struct {
	exact    map[string]int // name -> rule index
	prefixes []prefixRule
	probs    []Probability
	def      Probability
}

type prefixRule struct {
	prefix string
	index  int
}

// NewRuleSet returns the rule set of rules, with def for names no rule matches.
func NewRuleSet(def float64, rules []Rule) *RuleSet {
	rs := &RuleSet{exact: map[string]int{}, def: NewProbability(def)}
	for i, r := range rules {
		rs.probs = append(rs.probs, NewProbability(r.Probability))
		if prefix, ok := strings.CutSuffix(r.Name, "*"); ok {
			rs.prefixes = append(rs.prefixes, prefixRule{prefix, i})
		} else if _, dup := rs.exact[r.Name]; !dup {
			rs.exact[r.Name] = i
		}
	}
	return rs
}

// Lookup returns the Probability for name.
func (rs *RuleSet) Lookup(name string) Probability {
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

// ValueKey returns a uniform 64-bit key for v that is the same in every collector instance.
func ValueKey(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return Mix64(xxhash.Sum64String(v.Str()))
	case pcommon.ValueTypeInt:
		return Mix64(xxhash.Sum64String("i") ^ uint64(v.Int()))
	default:
		return Mix64(xxhash.Sum64String(v.AsString()))
	}
}

// ScaleRound returns x/p rounded to an integer at random so that its expectation is exactly x/p.
func ScaleRound(x float64, adjusted float64, u uint64) float64 {
	y := x * adjusted
	f := math.Floor(y)
	if frac := y - f; frac > 0 && float64(u>>11)/(1<<53) < frac {
		f++
	}
	return f
}

// ScaleNumberPoint multiplies a kept point's value by 1/p (int values with unbiased random rounding).
func ScaleNumberPoint(dp pmetric.NumberDataPoint, pr Probability, rnd func() uint64) {
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		v := ScaleRound(float64(dp.IntValue()), pr.Adjusted, rnd())
		if v >= math.MaxInt64 {
			dp.SetIntValue(math.MaxInt64)
		} else if v <= math.MinInt64 {
			dp.SetIntValue(math.MinInt64)
		} else {
			dp.SetIntValue(int64(v))
		}
	case pmetric.NumberDataPointValueTypeDouble:
		dp.SetDoubleValue(dp.DoubleValue() * pr.Adjusted)
	}
}

// ScaleHistogramPoint multiplies a kept histogram's counts and sum by 1/p. Bucket counts are rounded
// at random without bias, and the count is kept equal to their sum.
func ScaleHistogramPoint(dp pmetric.HistogramDataPoint, pr Probability, rnd func() uint64) {
	bc := dp.BucketCounts()
	if bc.Len() > 0 {
		var total uint64
		for i := 0; i < bc.Len(); i++ {
			v := ScaleRound(float64(bc.At(i)), pr.Adjusted, rnd())
			n := uint64(math.MaxUint64)
			if v < math.Ldexp(1, 64) {
				n = uint64(v)
			}
			bc.SetAt(i, n)
			total += n
		}
		dp.SetCount(total)
	} else {
		v := ScaleRound(float64(dp.Count()), pr.Adjusted, rnd())
		if v < math.Ldexp(1, 64) {
			dp.SetCount(uint64(v))
		}
	}
	if dp.HasSum() {
		dp.SetSum(dp.Sum() * pr.Adjusted)
	}
}

// Mix64 is the splitMix64 finalizer: it spreads every input bit over the output.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
