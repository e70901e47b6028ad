package anomalyeval

import (
	"math"
	"sort"
)

// StaticThreshold flags the minutes of counts[from:to] outside the [q, 1-q] quantiles of counts[train:from]
// (strictly below the lower or above the upper quantile): a hand-set alert threshold, learned once.
func StaticThreshold(counts []float64, train, from, to int, q float64) []bool {
	hist := append([]float64(nil), counts[train:from]...)
	sort.Float64s(hist)
	at := func(p float64) float64 { return hist[int(math.Round(p*float64(len(hist)-1)))] }
	lo, hi := at(q), at(1-q)
	out := make([]bool, to-from)
	for i := range out {
		v := counts[from+i]
		out[i] = v < lo || v > hi
	}
	return out
}

// WindowedGaussian flags the minutes of counts[from:to] whose z-score against the window minutes before them
// (mean and standard deviation) is at least z in absolute value; a window with no spread flags any change.
func WindowedGaussian(counts []float64, from, to, window int, z float64) []bool {
	out := make([]bool, to-from)
	var sum, sq float64
	for i := from - window; i < from; i++ {
		sum += counts[i]
		sq += counts[i] * counts[i]
	}
	n := float64(window)
	for i := range out {
		m := from + i
		mean := sum / n
		sd := math.Sqrt(math.Max(sq/n-mean*mean, 0))
		v := counts[m]
		if sd < 1e-9 {
			out[i] = v != mean
		} else {
			out[i] = math.Abs(v-mean)/sd >= z
		}
		old := counts[m-window]
		sum += v - old
		sq += v*v - old*old
	}
	return out
}
