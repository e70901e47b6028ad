package anomalyeval

import (
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Kind is the kind of an injected anomaly.
type Kind string

// The injected anomaly kinds.
const (
	DropToZero  Kind = "drop-to-zero"
	Halving     Kind = "halving"
	Spike       Kind = "spike"
	LevelShift  Kind = "level-shift"
	SlowDecline Kind = "slow-decline"
)

// Kinds lists the injected kinds in report order.
var Kinds = []Kind{DropToZero, Halving, Spike, LevelShift, SlowDecline}

// Label is one injected anomaly: the minutes [Start, End) of a series are anomalous.
type Label struct {
	Kind       Kind
	Start, End int // minute indexes
	// Expected is the clean series' expected count in the anomaly's first minute.
	Expected float64
}

// Spec describes one generated metric.
type Spec struct {
	// Name is the metric's name.
	Name string
	// Peak is the expected count per minute at the daily peak of a weekday, before trend.
	Peak float64
	// Night is the ratio of the night trough to the peak (0 < Night <= 1).
	Night float64
	// Weekend multiplies Saturdays and Sundays.
	Weekend float64
	// TrendPerWeek is the relative growth per week (0.05: +5% a week).
	TrendPerWeek float64
	// Location is the time zone of the seasonality (its hours and weekdays); nil is UTC.
	Location *time.Location
	// Holidays are the days (minute index of their midnight) whose rate is multiplied by HolidayFactor.
	Holidays      []int
	HolidayFactor float64
	// Anomalies are injected, in order and not overlapping; an End left zero is filled from the kind. A level
	// shift lasts past its End (the label covers its first hours; after that it is the new normal).
	Anomalies []Label
}

// Series is a generated metric: counts per minute from Start, the clean expectation behind them, and the
// injected anomalies.
type Series struct {
	Spec     Spec
	Start    time.Time // UTC, on a minute
	Counts   []float64
	Expected []float64 // the clean (anomaly-free) expected count per minute
	Labels   []Label
}

// Generate draws minutes counts of spec from start (a UTC minute; local time is UTC) with Poisson noise around
// the seasonal, trended, holiday-adjusted rate, with spec.Anomaly injected. Deterministic for a seed.
func Generate(spec Spec, start time.Time, minutes int, seed uint64) Series {
	src := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	s := Series{Spec: spec, Start: start, Counts: make([]float64, minutes), Expected: make([]float64, minutes)}
	labels := make([]Label, 0, len(spec.Anomalies))
	for _, a := range spec.Anomalies {
		if a.End == 0 {
			a.End = a.Start + defaultDuration(a.Kind)
		}
		a.End = min(a.End, minutes)
		if a.Start < minutes {
			labels = append(labels, a)
		}
	}
	holidays := map[int]bool{}
	for _, h := range spec.Holidays {
		holidays[h/1440] = true
	}
	for i := range minutes {
		t := start.Add(time.Duration(i) * time.Minute)
		lambda := spec.rate(t, float64(i)/(7*1440))
		if holidays[i/1440] {
			lambda *= spec.HolidayFactor
		}
		s.Expected[i] = lambda
		for _, a := range labels {
			if i >= a.Start {
				lambda *= a.factor(i)
			}
		}
		if lambda > 0 {
			s.Counts[i] = distuv.Poisson{Lambda: lambda, Src: src}.Rand()
		}
	}
	for _, a := range labels {
		a.Expected = s.Expected[a.Start]
		for _, b := range labels {
			if b.Start < a.Start {
				a.Expected *= b.factor(a.Start)
			}
		}
		s.Labels = append(s.Labels, a)
	}
	return s
}

// rate is the clean expected count per minute at t, weeks after the series' start.
func (sp Spec) rate(t time.Time, weeks float64) float64 {
	if sp.Location != nil {
		t = t.In(sp.Location)
	}
	h := float64(t.Hour()) + float64(t.Minute())/60
	// A smooth day: trough at 04:00, peak at 16:00.
	day := sp.Night + (1-sp.Night)*math.Pow(0.5-0.5*math.Cos(2*math.Pi*(h-4)/24), 1.5)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		day *= sp.Weekend
	}
	return sp.Peak * day * (1 + sp.TrendPerWeek*weeks)
}

// defaultDuration is how long an injected anomaly of kind lasts, in minutes, unless its End is set.
func defaultDuration(k Kind) int {
	switch k {
	case DropToZero:
		return 30
	case Halving:
		return 90
	case Spike:
		return 10
	case LevelShift:
		return 12 * 60
	default: // SlowDecline
		return 8 * 60
	}
}

// factor multiplies the clean rate at minute i (>= a.Start).
func (a Label) factor(i int) float64 {
	switch a.Kind {
	case DropToZero:
		if i < a.End {
			return 0
		}
	case Halving:
		if i < a.End {
			return 0.5
		}
	case Spike:
		if i < a.End {
			return 3
		}
	case LevelShift:
		return 0.6 // lasts: the new normal after End
	case SlowDecline:
		// Down to 0.2 over six hours, then stays there until End.
		if i < a.End {
			return math.Max(0.2, 1-0.8*float64(i-a.Start)/360)
		}
	}
	return 1
}
