package anomalyeval

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var start = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday

// TestGenerate checks the generated series' properties: deterministic for a seed, Poisson counts around the
// clean expectation (mean within a few standard errors), the injected anomaly's shape, and its label.
func TestGenerate(t *testing.T) {
	spec := Spec{Name: "m", Peak: 50, Night: 0.2, Weekend: 0.5, TrendPerWeek: 0.1,
		Anomalies: []Label{{Kind: DropToZero, Start: 3000}, {Kind: Spike, Start: 5000, End: 5010}}}
	a, b := Generate(spec, start, 7*1440, 7), Generate(spec, start, 7*1440, 7)
	require.Equal(t, a.Counts, b.Counts, "deterministic")
	require.Len(t, a.Labels, 2)
	assert.Equal(t, Label{Kind: DropToZero, Start: 3000, End: 3030, Expected: a.Expected[3000]}, a.Labels[0])
	for i := 3000; i < 3030; i++ {
		assert.Zero(t, a.Counts[i])
	}
	var sum, exp float64
	for i := range 2 * 1440 { // the clean first two days
		sum += a.Counts[i]
		exp += a.Expected[i]
		assert.Equal(t, math.Trunc(a.Counts[i]), a.Counts[i], "whole counts")
	}
	assert.InDelta(t, exp, sum, 4*math.Sqrt(exp))
	assert.Greater(t, a.Expected[16*60], 3*a.Expected[4*60], "a peak at 16:00 over the trough at 04:00")
	assert.InDelta(t, 0.5, a.Expected[5*1440+16*60]/a.Expected[3*1440+16*60]/(1+0.1*2.0/7), 0.01, "Saturday against Thursday")
	var spike float64
	for i := 5000; i < 5010; i++ {
		spike += a.Counts[i]
	}
	assert.Greater(t, spike, 2*sumOf(a.Expected[5000:5010]), "the spike triples the rate")
}

func sumOf(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

// TestResult checks the event scoring on hand-made flags: merged runs, true and false alarms, found labels and
// delays, and the clean-series rate.
func TestResult(t *testing.T) {
	labelled := Series{Spec: Spec{Name: "a"}, Labels: []Label{
		{Kind: DropToZero, Start: 110, End: 140, Expected: 8},
		{Kind: Halving, Start: 300, End: 390, Expected: 8},
	}}
	flags := make([]bool, 500) // minutes 100..599
	for _, m := range []int{111, 112, 120, 200, 201} {
		flags[m-100] = true
	}
	r := NewResult()
	r.Add(labelled, 100, flags)
	assert.Equal(t, 2, r.Alarms, "111-120 merge; 200-201")
	assert.Equal(t, 1, r.FalseAlarms, "200 is 60 minutes after the drop ended")
	assert.Equal(t, 1, r.Found[DropToZero])
	assert.Equal(t, 0, r.Found[Halving])
	assert.Equal(t, []int{1}, r.Delays[DropToZero])
	assert.Equal(t, 1, r.DropsAt5Found)
	assert.InDelta(t, 0.5, r.Precision(), 1e-9)
	assert.InDelta(t, 0.5, r.Recall(), 1e-9)
	r.Add(Series{Spec: Spec{Name: "clean"}}, 0, make([]bool, 7*1440))
	assert.Zero(t, r.FalseAlarmsPerWeek())
}

// TestBaselines: the static threshold flags what leaves its training range; the windowed Gaussian flags a jump.
func TestBaselines(t *testing.T) {
	counts := make([]float64, 400)
	for i := range counts {
		counts[i] = float64(10 + i%3)
	}
	counts[350] = 0
	counts[360] = 40
	st := StaticThreshold(counts, 0, 300, 400, 0)
	assert.True(t, st[50])
	assert.True(t, st[60])
	assert.Equal(t, 2, countTrue(st))
	wg := WindowedGaussian(counts, 300, 400, 60, 4)
	assert.True(t, wg[50])
	assert.True(t, wg[60])
	assert.Equal(t, 2, countTrue(wg))
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}
