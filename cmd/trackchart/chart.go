package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is one step of a series: the step's start, the count in it, whether the count is final,
// and the anomaly track.anomalies found in it, if any.
type Point struct {
	Time  time.Time
	Value float64
	// Complete is false when counts of the step may still arrive (track.series' complete column):
	// the current step, a step past the pipeline's watermark, or one in an ingestion gap.
	Complete bool
	// Anomaly is "drop" or "spike" when track.anomalies flagged the step, else "".
	Anomaly string
	// Score is the anomaly's severity (track.anomalies' score); it picks the kind of merged steps.
	Score float64
}

// Chart is what Render draws.
type Chart struct {
	// Title names the chart; the step, peak and range are added by Render.
	Title string
	// Points are the steps, oldest first, one per Step.
	Points []Point
	// Step is the width of one point.
	Step span
	// Height is the number of rows of bars (at least 1).
	Height int
	// Width is the most columns the bars may take; steps are merged when there are more.
	Width int
	// Location is the time zone of the printed times (UTC when nil).
	Location *time.Location
	// Notes are printed under the chart, one a line: what the reader must know that the bars do
	// not show (for example why anomalies are not marked).
	Notes []string
}

const (
	full    = "▉" // a full row of a bar, as in the design's sample charts
	half    = "▄" // the top half-row of a bar
	tiny    = "▁" // a bar too small for half a row, so that it is not mistaken for zero
	filling = "░" // a row of a bar whose step is incomplete: what has arrived so far
	unknown = '?' // on the axis under an incomplete step, also one where nothing has arrived yet
	drop    = "▼" // under the axis: track.anomalies flagged a drop
	spike   = "▲" // under the axis: track.anomalies flagged a spike
)

// Render draws c on w:
//
//	^ new-signup per 1m · peak 132 at 22:14
//	132 |   ▉
//	    | ▉ ▉
//	    | ▉ ▉ ▉       ░
//	    | ▉ ▉ ▉ ▉     ░
//	  0 +-----------?-?-> time
//	              ▼
//	      22:10     22:15
//	    2026-11-21 22:10 → 22:17 UTC · total 473
//	    ░ ? incomplete: counts may still arrive (the current step, past the pipeline's watermark, or in an ingestion gap): 2 steps, 25 of the total
//	    ▼ drop: anomalous against the metric's baseline (trackchart anomalies lists them)
//
// Each bar is scaled to the peak in half rows; a step with a count too small for half a row gets
// a thin bar, and a step with no count none. An incomplete step is drawn in light shade (whole
// rows) with a '?' on the axis, so that a step still filling or in an outage never reads as a
// drop to zero. Anomalous steps get a mark under the axis. The legend names only what the chart
// shows. Time labels are never cut: one that does not fit is left out (the footer gives the
// range). It returns the first write error. Render is a pure function of c and is safe for
// concurrent use.
func Render(w io.Writer, c Chart) error {
	if c.Height < 1 {
		c.Height = 1
	}
	if c.Width < 1 {
		c.Width = 1
	}
	loc := c.Location
	if loc == nil {
		loc = time.UTC
	}
	points, step := merge(c.Points, c.Step, c.Width)
	var b strings.Builder
	if len(points) == 0 {
		fmt.Fprintf(&b, "^ %s: no data in the range\n", c.Title)
		for _, n := range c.Notes {
			b.WriteString(n + "\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}

	peak, peakAt, sum := 0.0, points[0].Time, 0.0
	pending, pendingSum, marks := 0, 0.0, map[string]bool{}
	for _, p := range points {
		sum += p.Value
		if p.Value > peak {
			peak, peakAt = p.Value, p.Time
		}
		if !p.Complete {
			pending++
			pendingSum += p.Value
		}
		if p.Anomaly != "" {
			marks[p.Anomaly] = true
		}
	}
	first := points[0].Time.In(loc)
	last := step.after(points[len(points)-1].Time.In(loc))
	layout := timeLayout(points, step, last.Sub(first), loc)

	switch {
	case peak > 0:
		fmt.Fprintf(&b, "^ %s per %s · peak %s at %s\n", c.Title, step, formatValue(peak), peakAt.In(loc).Format(layout))
	case pending > 0:
		fmt.Fprintf(&b, "^ %s per %s · nothing counted so far\n", c.Title, step)
	default:
		fmt.Fprintf(&b, "^ %s per %s · nothing counted\n", c.Title, step)
	}

	peakLabel := formatValue(peak)
	labelWidth := max(len(peakLabel), 1)
	gap := ""
	if 2*len(points)-1 <= c.Width {
		gap = " "
	}
	// Bar heights in half rows.
	halves := make([]int, len(points))
	for i, p := range points {
		if peak > 0 && p.Value > 0 {
			halves[i] = int(math.Round(p.Value / peak * float64(2*c.Height)))
		}
	}
	for row := c.Height; row >= 1; row-- {
		label := ""
		if row == c.Height {
			label = peakLabel
		}
		fmt.Fprintf(&b, "%*s |", labelWidth, label)
		line := make([]string, len(points))
		for i, h := range halves {
			line[i] = cell(points[i], h, row)
		}
		b.WriteString(strings.TrimRight(gap+strings.Join(line, gap), " "))
		b.WriteByte('\n')
	}
	// The axis, with a '?' under each incomplete step; bar i stands in column col(i) after the '+'.
	cols := len(points)*(1+len(gap)) + len(gap)
	col := func(i int) int { return len(gap) + i*(1+len(gap)) }
	axis := []rune(strings.Repeat("-", cols))
	for i, p := range points {
		if !p.Complete {
			axis[col(i)] = unknown
		}
	}
	fmt.Fprintf(&b, "%*s +%s> time\n", labelWidth, "0", string(axis))
	if len(marks) > 0 {
		row := []rune(strings.Repeat(" ", cols))
		for i, p := range points {
			switch p.Anomaly {
			case "drop":
				row[col(i)] = []rune(drop)[0]
			case "spike":
				row[col(i)] = []rune(spike)[0]
			}
		}
		fmt.Fprintf(&b, "%*s  %s\n", labelWidth, "", strings.TrimRight(string(row), " "))
	}

	// Time labels under the first and the last bar. A label is never cut: the last one is left
	// out when it would run into the first.
	startLabel, endLabel := first.Format(layout), points[len(points)-1].Time.In(loc).Format(layout)
	firstCol := labelWidth + 2 + col(0)
	lastCol := labelWidth + 2 + col(len(points)-1)
	labels := strings.Repeat(" ", firstCol) + startLabel
	if endCol := lastCol - len(endLabel) + 1; len(points) > 1 && endCol > firstCol+len(startLabel) {
		labels += strings.Repeat(" ", endCol-len(labels)) + endLabel
	}
	b.WriteString(labels)
	b.WriteByte('\n')
	fmt.Fprintf(&b, "%*s %s → %s %s · total %s\n", labelWidth, "", first.Format("2006-01-02 15:04"),
		last.Format(endLayout(first, last)), zoneName(loc, first), formatValue(sum))

	indent := strings.Repeat(" ", labelWidth+1)
	if pending > 0 {
		fmt.Fprintf(&b, "%s%s %c incomplete: counts may still arrive (the current step, past the pipeline's watermark, "+
			"or in an ingestion gap): %d %s, %s of the total\n", indent, filling, unknown, pending,
			plural(pending, "step", "steps"), formatValue(pendingSum))
	}
	if len(marks) > 0 {
		var kinds []string
		if marks["drop"] {
			kinds = append(kinds, drop+" drop")
		}
		if marks["spike"] {
			kinds = append(kinds, spike+" spike")
		}
		fmt.Fprintf(&b, "%s%s: anomalous against the metric's baseline (trackchart anomalies lists them)\n",
			indent, strings.Join(kinds, " "))
	}
	for _, n := range c.Notes {
		b.WriteString(indent + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell is what point p, h half rows high, shows in row (1 is the bottom row).
func cell(p Point, h, row int) string {
	if !p.Complete {
		if h >= 2*row-1 || (row == 1 && p.Value > 0) {
			return filling
		}
		return " "
	}
	switch {
	case h >= 2*row:
		return full
	case h == 2*row-1:
		return half
	case row == 1 && h == 0 && p.Value > 0:
		return tiny
	}
	return " "
}

// timeLayout is the shortest layout that shows every step start exactly: months for month steps on
// the first of a month, dates for steps at local midnight, clock times for a range of a day or less,
// and dates with times otherwise.
func timeLayout(points []Point, step span, length time.Duration, loc *time.Location) string {
	midnight, monthly, wholeMinutes, oneYear := true, true, true, true
	y0 := points[0].Time.In(loc).Year()
	for _, p := range points {
		t := p.Time.In(loc)
		atMidnight := t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
		midnight = midnight && atMidnight
		monthly = monthly && atMidnight && t.Day() == 1
		wholeMinutes = wholeMinutes && t.Second() == 0 && t.Nanosecond() == 0
		oneYear = oneYear && t.Year() == y0
	}
	switch {
	case monthly && step.months > 0:
		return "2006-01"
	case midnight && oneYear:
		return "01-02"
	case midnight:
		return "2006-01-02"
	}
	clock := "15:04"
	if !wholeMinutes {
		clock = "15:04:05"
	}
	if length <= day {
		return clock
	}
	if oneYear {
		return "01-02 " + clock
	}
	return "2006-01-02 " + clock
}

// endLayout prints the end of a range as much as the start does not already say.
func endLayout(start, end time.Time) string {
	switch {
	case start.Year() == end.Year() && start.YearDay() == end.YearDay():
		return "15:04"
	case start.Year() == end.Year():
		return "01-02 15:04"
	}
	return "2006-01-02 15:04"
}

// zoneName names loc: its IANA name, or the abbreviation in force at t for a zone without one.
func zoneName(loc *time.Location, t time.Time) string {
	if n := loc.String(); n != "" && n != "Local" {
		return n
	}
	return t.In(loc).Format("MST")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// merge adds adjacent points together until at most width remain, and returns them with the
// widened step. A merged point is complete when all its points are, and carries the anomaly of
// the highest score among them.
func merge(points []Point, step span, width int) ([]Point, span) {
	if len(points) <= width {
		return points, step
	}
	k := (len(points) + width - 1) / width
	out := make([]Point, 0, (len(points)+k-1)/k)
	for i := 0; i < len(points); i += k {
		p := Point{Time: points[i].Time, Complete: true}
		for _, q := range points[i:min(i+k, len(points))] {
			p.Value += q.Value
			p.Complete = p.Complete && q.Complete
			if q.Anomaly != "" && (p.Anomaly == "" || q.Score > p.Score) {
				p.Anomaly, p.Score = q.Anomaly, q.Score
			}
		}
		out = append(out, p)
	}
	return out, step.times(k)
}

// formatValue prints whole numbers without decimals and others with four significant digits.
func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
