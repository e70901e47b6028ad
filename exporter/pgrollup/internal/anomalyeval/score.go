package anomalyeval

import (
	"fmt"
	"math"
	"sort"
)

// Tolerance is how many minutes after an anomaly's end an alarm that started inside it may still run, and
// how far apart two flagged runs may be to form one alarm.
const Tolerance = 15

// Result accumulates the event-level outcome of one detector over several series.
type Result struct {
	// Alarms counts the alarms (runs of flagged minutes, runs less than Tolerance apart merged);
	// FalseAlarms those that overlap no label's [Start, End+Tolerance).
	Alarms, FalseAlarms int
	// CleanWeeks is the length of the judged ranges of series without labels, in weeks; CleanAlarms their alarms.
	CleanWeeks  float64
	CleanAlarms int
	// Found and Total count the labels per kind; a label is found when a minute of [Start, End) is flagged.
	Found, Total map[Kind]int
	// Delays holds, per kind, the delay in minutes from Start to the first flagged minute of each found label.
	Delays map[Kind][]int
	// FalseAt describes each false alarm: the series, its first minute and length, and the series' labels.
	FalseAt []string
	// DropsAt5 counts the drops to zero expected to hold at least 5 per minute at their start, and DropsAt5Found
	// those found within 2 minutes (delay <= 1).
	DropsAt5, DropsAt5Found int
}

// NewResult returns an empty Result.
func NewResult() *Result {
	return &Result{Found: map[Kind]int{}, Total: map[Kind]int{}, Delays: map[Kind][]int{}}
}

// Add scores flags (one per minute of [from, from+len(flags)) of s) into r.
func (r *Result) Add(s Series, from int, flags []bool) {
	type run struct{ a, b int } // minutes [a, b)
	var runs []run
	for i, f := range flags {
		if !f {
			continue
		}
		m := from + i
		if n := len(runs); n > 0 && m-runs[n-1].b < Tolerance {
			runs[n-1].b = m + 1
		} else {
			runs = append(runs, run{m, m + 1})
		}
	}
	to := from + len(flags)
	r.Alarms += len(runs)
	if len(s.Labels) == 0 {
		r.CleanWeeks += float64(len(flags)) / (7 * 1440)
		r.CleanAlarms += len(runs)
	}
	for _, x := range runs {
		hit := false
		for _, l := range s.Labels {
			if x.a < l.End+Tolerance && x.b > l.Start {
				hit = true
			}
		}
		if !hit {
			r.FalseAlarms++
			r.FalseAt = append(r.FalseAt, fmt.Sprintf("%s minute %d (day %d %02d:%02d) for %d min; labels %v",
				s.Spec.Name, x.a, x.a/1440, x.a%1440/60, x.a%60, x.b-x.a, s.Labels))
		}
	}
	for _, l := range s.Labels {
		if l.Start < from || l.Start >= to {
			continue
		}
		r.Total[l.Kind]++
		at5 := l.Kind == DropToZero && l.Expected >= 5
		if at5 {
			r.DropsAt5++
		}
		for m := l.Start; m < min(l.End, to); m++ {
			if flags[m-from] {
				r.Found[l.Kind]++
				r.Delays[l.Kind] = append(r.Delays[l.Kind], m-l.Start)
				if at5 && m-l.Start <= 1 {
					r.DropsAt5Found++
				}
				break
			}
		}
	}
}

// Precision is the share of alarms that overlap a label.
func (r *Result) Precision() float64 {
	if r.Alarms == 0 {
		return 0
	}
	return float64(r.Alarms-r.FalseAlarms) / float64(r.Alarms)
}

// Recall is the share of labels found (all kinds).
func (r *Result) Recall() float64 {
	var f, t int
	for _, k := range Kinds {
		f += r.Found[k]
		t += r.Total[k]
	}
	if t == 0 {
		return 0
	}
	return float64(f) / float64(t)
}

// F1 is the harmonic mean of Precision and Recall.
func (r *Result) F1() float64 {
	p, q := r.Precision(), r.Recall()
	if p+q == 0 {
		return 0
	}
	return 2 * p * q / (p + q)
}

// RecallOf is the share of labels of kind k found.
func (r *Result) RecallOf(k Kind) float64 {
	if r.Total[k] == 0 {
		return math.NaN()
	}
	return float64(r.Found[k]) / float64(r.Total[k])
}

// MedianDelay is the median delay, in minutes, of the found labels of kind k (NaN when none).
func (r *Result) MedianDelay(k Kind) float64 {
	d := append([]int(nil), r.Delays[k]...)
	if len(d) == 0 {
		return math.NaN()
	}
	sort.Ints(d)
	return float64(d[len(d)/2])
}

// FalseAlarmsPerWeek is the alarms per metric-week on the series without labels.
func (r *Result) FalseAlarmsPerWeek() float64 {
	if r.CleanWeeks == 0 {
		return math.NaN()
	}
	return float64(r.CleanAlarms) / r.CleanWeeks
}

// DropRecallAt5 is the share of drops to zero at >= 5 expected per minute flagged within 2 minutes.
func (r *Result) DropRecallAt5() float64 {
	if r.DropsAt5 == 0 {
		return math.NaN()
	}
	return float64(r.DropsAt5Found) / float64(r.DropsAt5)
}
