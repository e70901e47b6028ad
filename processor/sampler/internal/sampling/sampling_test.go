package sampling

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestUnbiasedDecision checks the sampling decision itself over 1M events with a fixed seed: with
// p = 0.1, the Horvitz–Thompson estimate of the total is within 1% of the truth, both when every
// event decides at random and when events are keyed by a per-event id.
func TestUnbiasedDecision(t *testing.T) {
	const n = 1_000_000
	pr := NewProbability(0.1)
	r := rand.New(rand.NewPCG(2026, 4))
	var truth, estRandom, estKeyed float64
	v := pcommon.NewValueStr("")
	for i := range n {
		x := float64(1 + r.IntN(10)) // event weight, e.g. a count carried by the event
		truth += x
		if pr.Keep(r.Uint64()) {
			estRandom += x * pr.Adjusted
		}
		v.SetStr("event-" + fmt.Sprint(i))
		if pr.Keep(ValueKey(v)) {
			estKeyed += x * pr.Adjusted
		}
	}
	assert.InDelta(t, truth, estRandom, truth*0.01)
	assert.InDelta(t, truth, estKeyed, truth*0.01)
}

func TestProbabilityAndRules(t *testing.T) {
	assert.True(t, NewProbability(1).All)
	assert.Equal(t, 10.0, NewProbability(0.1).Adjusted)
	assert.False(t, NewProbability(0.5).Keep(1<<63))
	assert.True(t, NewProbability(0.5).Keep(1<<63-1))
	assert.True(t, NewProbability(1e-300).Threshold < 2)
	rs := NewRuleSet(0.5, []Rule{{Name: "a*", Probability: 0.2}, {Name: "ab", Probability: 0.3}, {Name: "ab", Probability: 0.4}, {Name: "c", Probability: 1}})
	assert.Equal(t, 0.2, rs.Lookup("ab").P, "the first matching rule wins")
	assert.Equal(t, 0.2, rs.Lookup("a").P)
	assert.Equal(t, 1.0, rs.Lookup("c").P)
	assert.Equal(t, 0.5, rs.Lookup("d").P)
	rs = NewRuleSet(1, []Rule{{Name: "x", Probability: 0.3}, {Name: "*", Probability: 0.2}})
	assert.Equal(t, 0.3, rs.Lookup("x").P)
	assert.Equal(t, 0.2, rs.Lookup("y").P)
	assert.Equal(t, 0.2, rs.Lookup("").P)
}

func TestScaleRoundUnbiased(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	rnd := r.Uint64
	var sum float64
	const n = 200_000
	for range n {
		sum += ScaleRound(3, 1/0.3, rnd()) // 10 exactly, by rounding 9.99.. or 10
	}
	assert.InDelta(t, 10.0, sum/n, 0.01)
	for range 1000 {
		v := ScaleRound(1, 1/0.4, rnd()) // 2.5
		assert.True(t, v == 2 || v == 3)
	}
}
