package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// listAnomalies prints the anomalies as a table, oldest first, times in o's zone:
//
//	anomalies of new-signup per 1m, 2026-11-21 21:10 → 22:10 UTC (complete steps only)
//	time              metric      kind  value  expected  normal range  score
//	2026-11-21 21:34  new-signup  drop  0      31.2      19 – 44       6.1
//
// With none it says so in one line. It returns the first write error.
func listAnomalies(w io.Writer, as []anomaly, o *options) error {
	what := "every metric"
	if o.metric != "" {
		what = o.metric
	}
	from, to := o.from.In(o.loc), o.to.In(o.loc)
	rng := fmt.Sprintf("%s → %s %s", from.Format("2006-01-02 15:04"), to.Format(endLayout(from, to)), zoneName(o.loc, from))
	var b bytes.Buffer
	if len(as) == 0 {
		fmt.Fprintf(&b, "no anomalies of %s per %s, %s (complete steps only)\n", what, o.step, rng)
	} else {
		fmt.Fprintf(&b, "anomalies of %s per %s, %s (complete steps only)\n", what, o.step, rng)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "time\tmetric\tkind\tvalue\texpected\tnormal range\tscore\n")
		for _, a := range as {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s – %s\t%.1f\n", a.Time.In(o.loc).Format("2006-01-02 15:04"), a.Metric,
				a.Kind, formatValue(a.Value), optional(a.Expected), optional(a.Lower), optional(a.Upper), a.Score)
		}
		_ = tw.Flush() // writes to b, which cannot fail
	}
	for _, n := range o.notes {
		fmt.Fprintln(&b, n)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// optional prints an estimate that may be NULL, to three significant digits without trailing
// zeros (whole numbers from 100 on): the expectation and its band are not counts.
func optional(v *float64) string {
	if v == nil {
		return "?"
	}
	a := math.Abs(*v)
	if a >= 100 || a == 0 {
		return strconv.FormatFloat(math.Round(*v), 'f', 0, 64)
	}
	decimals := max(0, 2-int(math.Floor(math.Log10(a))))
	s := strconv.FormatFloat(*v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
