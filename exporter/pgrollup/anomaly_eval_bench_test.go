package pgrollup

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/exporter/pgrollup/internal/anomalyeval"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
)

// evalSpecs returns the evaluation's metrics: for each peak rate (per minute) from 0.05 to 300, two clean
// metrics and three with seven anomalies each in the evaluated week (one a day, kinds in turn, a level shift
// last), with randomised seasonality and trend, and a holiday in the training weeks for half of them.
func evalSpecs(evalFrom int, seed uint64) []anomalyeval.Spec {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []anomalyeval.Spec
	order := []anomalyeval.Kind{anomalyeval.DropToZero, anomalyeval.Spike, anomalyeval.Halving, anomalyeval.DropToZero,
		anomalyeval.SlowDecline, anomalyeval.Spike, anomalyeval.LevelShift}
	for _, peak := range []float64{0.05, 0.5, 2, 10, 50, 300} {
		for j := range 5 {
			sp := anomalyeval.Spec{
				Name: fmt.Sprintf("eval-%g-%d", peak, j), Peak: peak,
				Night: 0.15 + 0.35*r.Float64(), Weekend: 0.5 + 0.5*r.Float64(), TrendPerWeek: -0.03 + 0.08*r.Float64(),
				HolidayFactor: 0.4,
			}
			if j%2 == 0 {
				sp.Holidays = []int{evalFrom - (5+r.IntN(9))*1440}
			}
			if j >= 2 {
				for d, k := range order {
					start := evalFrom + d*1440 + 60 + r.IntN(20*60)
					sp.Anomalies = append(sp.Anomalies, anomalyeval.Label{Kind: k, Start: start})
				}
			}
			out = append(out, sp)
		}
	}
	return out
}

// BenchmarkAnomalyEvaluation runs pgrollup's detector (refresh_anomaly_baselines and anomalies(), the SQL in
// Postgres) over a week of generated, labelled per-minute series after three weeks of training history,
// replaying the exporter's schedule (the baselines through the start of each hour, then that hour judged), and scores it
// beside the two reference detectors on the same counts: a static threshold (quantiles of the previous week)
// and a trailing 60-minute z-score, each at the best of a few thresholds for its F1. It reports precision,
// recall, F1, recall of drops to zero at >= 5 expected per minute, false alarms per metric-week on clean
// metrics, and median delays. One iteration is the whole evaluation: run with -benchtime 1x.
func BenchmarkAnomalyEvaluation(b *testing.B) {
	te := startAnomalyExporter(b) // its loop would refresh the baselines as of now, in the middle of the replay
	ctx := context.Background()
	_, err := schema.Migrate(ctx, te.pool, te.sc.Name)
	require.NoError(b, err)
	const train, evalWeek = 3 * 7 * 1440, 7 * 1440
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	start := end.Add(-minute(train + evalWeek))
	specs := evalSpecs(train, 42)
	var all []anomalyeval.Series
	for i, sp := range specs {
		all = append(all, anomalyeval.Generate(sp, start, train+evalWeek, uint64(100+i)))
	}
	require.NoError(b, anomalyeval.Load(ctx, te.pool, te.sc.Name, all, train-1440))
	_, err = te.pool.Exec(ctx, "ANALYZE "+te.schema+".total_minute, "+te.schema+".total_hour, "+te.schema+".series")
	require.NoError(b, err)
	index := map[string]int{}
	for i, s := range all {
		index[s.Spec.Name] = i
	}

	for range b.N {
		flags := make([][]bool, len(all))
		for i := range flags {
			flags[i] = make([]bool, evalWeek)
		}
		var refresh, judge time.Duration
		for h := 0; h < evalWeek/60; h++ {
			from := start.Add(minute(train + h*60))
			t0 := time.Now()
			te.refreshBaselines(b, from.Add(5*time.Minute)) // as the exporter would, 5 minutes into the hour
			t1 := time.Now()
			rows := te.anomalies(b, from, from.Add(time.Hour), "1 minute", nil)
			judge += time.Since(t1)
			refresh += t1.Sub(t0)
			for _, r := range rows {
				flags[index[r.Metric]][int(r.At.Sub(start)/time.Minute)-train] = true
			}
		}
		ours := anomalyeval.NewResult()
		for i, s := range all {
			ours.Add(s, train, flags[i])
		}
		static := bestOf("static threshold q=", []float64{0.001, 0.0001, 0}, func(q float64) *anomalyeval.Result {
			res := anomalyeval.NewResult()
			for _, s := range all {
				res.Add(s, train, anomalyeval.StaticThreshold(s.Counts, train-evalWeek, train, train+evalWeek, q))
			}
			return res
		})
		gauss := bestOf("60-min z-score |z|>=", []float64{3, 4, 5, 6}, func(z float64) *anomalyeval.Result {
			res := anomalyeval.NewResult()
			for _, s := range all {
				res.Add(s, train, anomalyeval.WindowedGaussian(s.Counts, train, train+evalWeek, 60, z))
			}
			return res
		})
		b.Logf("%d metrics (%d clean), %d labels; refresh %s/hour, anomalies() %s/hour (mean)",
			len(all), 12, countLabels(all), refresh/time.Duration(evalWeek/60), judge/time.Duration(evalWeek/60))
		b.Log("\n" + evalTable(map[string]*anomalyeval.Result{"pgrollup": ours, static.name: static.res, gauss.name: gauss.res},
			[]string{"pgrollup", static.name, gauss.name}))
		for _, f := range ours.FalseAt {
			b.Log("false alarm: " + f)
		}
		b.ReportMetric(ours.F1(), "F1")
		b.ReportMetric(ours.Precision(), "precision")
		b.ReportMetric(ours.Recall(), "recall")
		b.ReportMetric(ours.DropRecallAt5(), "drop5-recall")
		b.ReportMetric(ours.FalseAlarmsPerWeek(), "false-alarms/metric-week")
		b.ReportMetric(static.res.F1(), "static-F1")
		b.ReportMetric(gauss.res.F1(), "zscore-F1")
	}
}

type named struct {
	name string
	res  *anomalyeval.Result
}

// bestOf runs score for each parameter and returns the result with the best F1, named with its parameter.
func bestOf(label string, params []float64, score func(float64) *anomalyeval.Result) named {
	var best named
	for _, p := range params {
		r := score(p)
		if best.res == nil || r.F1() > best.res.F1() {
			best = named{label + fmt.Sprint(p), r}
		}
	}
	return best
}

func countLabels(all []anomalyeval.Series) int {
	n := 0
	for _, s := range all {
		n += len(s.Labels)
	}
	return n
}

// evalTable formats the results as a Markdown table, one row per detector.
func evalTable(res map[string]*anomalyeval.Result, order []string) string {
	var b strings.Builder
	b.WriteString("| detector | precision | recall | F1 | drop-to-zero ≥5/min found ≤2 min | false alarms / clean metric-week |")
	for _, k := range anomalyeval.Kinds {
		fmt.Fprintf(&b, " %s recall (median delay) |", k)
	}
	b.WriteString("\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range order {
		r := res[name]
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %d/%d | %.1f |", name, r.Precision(), r.Recall(), r.F1(),
			r.DropsAt5Found, r.DropsAt5, r.FalseAlarmsPerWeek())
		for _, k := range anomalyeval.Kinds {
			d := r.MedianDelay(k)
			ds := "-"
			if !math.IsNaN(d) {
				ds = fmt.Sprintf("%.0f min", d)
			}
			fmt.Fprintf(&b, " %d/%d (%s) |", r.Found[k], r.Total[k], ds)
		}
		b.WriteString("\n")
	}
	return b.String()
}
