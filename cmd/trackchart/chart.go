package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is one step of a series: the step's start and the count in it.
type Point struct {
	Time  time.Time
	Value float64
}

// Chart is what Render draws.
type Chart struct {
	// Title names the chart; the step, peak and range are added by Render.
	Title string
	// Points are the steps, oldest first, evenly spaced by Step.
	Points []Point
	// Step is the width of one point.
	Step time.Duration
	// Height is the number of rows of bars (at least 1).
	Height int
	// Width is the most columns the bars may take; steps are merged when there are more.
	Width int
	// Location is the time zone of the printed times (UTC when nil).
	Location *time.Location
}

const (
	full = "▉" // a full row of a bar, as in the design's sample charts
	half = "▄" // the top half-row of a bar
	tiny = "▁" // a bar too small for half a row, so that it is not mistaken for zero
)

// Render draws c on w:
//
//	^ new-signup per 1m · peak 132 at 22:14
//	132 |   ▉
//	    | ▉ ▉
//	    | ▉ ▉ ▉
//	    | ▉ ▉ ▉ ▉ ▄
//	  0 +-----------> time
//	      22:10     22:15
//	    2026-11-21 22:10 → 22:16 UTC · total 473
//
// Each bar is scaled to the peak in half rows; a step with a count too small for half a row gets
// a thin bar, and a step with no count none. It returns the first write error. Render is a pure
// function of c and is safe for concurrent use.
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
		_, err := io.WriteString(w, b.String())
		return err
	}

	peak, peakAt, sum := 0.0, points[0].Time, 0.0
	for _, p := range points {
		sum += p.Value
		if p.Value > peak {
			peak, peakAt = p.Value, p.Time
		}
	}
	layout := "15:04"
	first, last := points[0].Time, points[len(points)-1].Time.Add(step)
	if last.Sub(first) > 24*time.Hour || step >= 24*time.Hour {
		layout = "01-02 15:04"
	}

	if peak > 0 {
		fmt.Fprintf(&b, "^ %s per %s · peak %s at %s\n", c.Title, formatStep(step), formatValue(peak), peakAt.In(loc).Format(layout))
	} else {
		fmt.Fprintf(&b, "^ %s per %s · nothing counted\n", c.Title, formatStep(step))
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
			switch {
			case h >= 2*row:
				line[i] = full
			case h == 2*row-1:
				line[i] = half
			case row == 1 && h == 0 && points[i].Value > 0:
				line[i] = tiny
			default:
				line[i] = " "
			}
		}
		b.WriteString(strings.TrimRight(gap+strings.Join(line, gap), " "))
		b.WriteByte('\n')
	}
	cols := len(points)*(1+len(gap)) + len(gap)
	fmt.Fprintf(&b, "%*s +%s> time\n", labelWidth, "0", strings.Repeat("-", cols))

	// Time labels under the first and the last bar, when they fit.
	startLabel, endLabel := first.In(loc).Format(layout), points[len(points)-1].Time.In(loc).Format(layout)
	axis := []byte(strings.Repeat(" ", labelWidth+2+cols))
	firstCol := labelWidth + 2 + len(gap)
	lastCol := firstCol + (len(points)-1)*(1+len(gap))
	copy(axis[firstCol:], startLabel)
	if endCol := lastCol - len(endLabel) + 1; len(points) > 1 && endCol > firstCol+len(startLabel) {
		copy(axis[endCol:], endLabel)
	}
	b.WriteString(strings.TrimRight(string(axis), " "))
	b.WriteByte('\n')
	zone := first.In(loc).Format("MST")
	fmt.Fprintf(&b, "%*s %s → %s %s · total %s\n", labelWidth, "", first.In(loc).Format("2006-01-02 15:04"),
		last.In(loc).Format(layout), zone, formatValue(sum))
	_, err := io.WriteString(w, b.String())
	return err
}

// merge adds adjacent points together until at most width remain, and returns them with the
// widened step.
func merge(points []Point, step time.Duration, width int) ([]Point, time.Duration) {
	if len(points) <= width {
		return points, step
	}
	k := (len(points) + width - 1) / width
	out := make([]Point, 0, (len(points)+k-1)/k)
	for i := 0; i < len(points); i += k {
		p := Point{Time: points[i].Time}
		for _, q := range points[i:min(i+k, len(points))] {
			p.Value += q.Value
		}
		out = append(out, p)
	}
	return out, step * time.Duration(k)
}

// formatValue prints whole numbers without decimals and others with four significant digits.
func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// formatStep prints a step as the shortest readable unit: 1m, 10s, 1h, 1d.
func formatStep(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
