package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func series(start time.Time, step time.Duration, values ...float64) []Point {
	ps := make([]Point, len(values))
	for i, v := range values {
		ps[i] = Point{Time: start.Add(time.Duration(i) * step), Value: v, Complete: true}
	}
	return ps
}

var (
	t0     = time.Date(2026, 11, 21, 22, 10, 0, 0, time.UTC)
	minute = span{clock: time.Minute}
)

func render(t *testing.T, c Chart) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, Render(&b, c))
	return b.String()
}

func TestRenderLikeTheDesignSample(t *testing.T) {
	got := render(t, Chart{
		Title:  "number of signups",
		Points: series(t0, time.Minute, 2, 3, 4, 1.5, 0.5),
		Step:   minute, Height: 4, Width: 80,
	})
	want := "" +
		"^ number of signups per 1m · peak 4 at 22:12\n" +
		"4 |     ▉\n" +
		"  |   ▉ ▉\n" +
		"  | ▉ ▉ ▉ ▄\n" +
		"  | ▉ ▉ ▉ ▉ ▄\n" +
		"0 +-----------> time\n" +
		"    22:10\n" +
		"  2026-11-21 22:10 → 22:15 UTC · total 11\n"
	assert.Equal(t, want, got)
}

func TestRenderLabelsBothEndsWhenThereIsRoom(t *testing.T) {
	got := render(t, Chart{Title: "m", Points: series(t0, time.Minute, 1, 2, 3, 4, 5, 6, 7, 8), Step: minute, Height: 2, Width: 80})
	assert.Contains(t, got, "\n    22:10     22:17\n")
}

func TestRenderShowsADipToZeroAsAGap(t *testing.T) {
	got := render(t, Chart{Title: "fraudulent-card", Points: series(t0, time.Minute, 10, 10, 0, 0, 10, 0.01),
		Step: minute, Height: 2, Width: 80})
	lines := strings.Split(got, "\n")
	require.GreaterOrEqual(t, len(lines), 4)
	assert.Equal(t, "10 | ▉ ▉     ▉", lines[1])
	// The bottom row: zeros are empty, a tiny non-zero count still shows.
	assert.Equal(t, "   | ▉ ▉     ▉ ▁", lines[2])
	assert.Contains(t, got, "total 30.01")
}

func TestRenderNothingCounted(t *testing.T) {
	got := render(t, Chart{Title: "new-signup", Points: series(t0, time.Minute, 0, 0, 0), Step: minute, Height: 3, Width: 80})
	assert.Contains(t, got, "nothing counted")
	assert.Contains(t, got, "total 0")
	assert.NotContains(t, got, full)
}

func TestRenderNoPoints(t *testing.T) {
	got := render(t, Chart{Title: "x", Step: minute, Height: 3, Width: 80})
	assert.Equal(t, "^ x: no data in the range\n", got)
}

func TestRenderMergesStepsBeyondTheWidth(t *testing.T) {
	values := make([]float64, 120)
	for i := range values {
		values[i] = 1
	}
	got := render(t, Chart{Title: "m", Points: series(t0, time.Minute, values...), Step: minute, Height: 2, Width: 40})
	assert.Contains(t, got, "per 3m · peak 3")
	assert.Contains(t, got, "total 120")
	// 40 bars, packed without gaps since 79 columns do not fit in 40.
	assert.Contains(t, got, "3 |"+strings.Repeat(full, 40)+"\n")
	assert.Contains(t, got, "   22:10                              00:07\n")
}

func TestRenderTimeZoneAndLongRanges(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	got := render(t, Chart{Title: "d", Points: series(t0, 24*time.Hour, 1, 2), Step: span{days: 1}, Height: 1, Width: 80, Location: loc})
	assert.Contains(t, got, "per 1d · peak 2 at 11-22 23:10")
	assert.Contains(t, got, "CET")
}

func TestMerge(t *testing.T) {
	ps := series(t0, time.Minute, 1, 2, 3, 4, 5)
	ps[1].Anomaly, ps[1].Score = "spike", 2
	ps[2].Anomaly, ps[2].Score = "drop", 5
	ps[4].Complete = false
	merged, step := merge(ps, minute, 2)
	assert.Equal(t, span{clock: 3 * time.Minute}, step)
	require.Len(t, merged, 2)
	assert.Equal(t, Point{Time: t0, Value: 6, Complete: true, Anomaly: "drop", Score: 5}, merged[0])
	assert.Equal(t, Point{Time: t0.Add(3 * time.Minute), Value: 9}, merged[1], "incomplete when one of its steps is")
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "132", formatValue(132))
	assert.Equal(t, "1.5", formatValue(1.5))
}

// TestRenderIncompleteStepsDifferFromZero: an incomplete step is drawn in light shade with a '?'
// on the axis, also when nothing has arrived in it; a complete zero is an empty column on a plain
// axis; the legend says what the marks mean and how much of the total is not final.
func TestRenderIncompleteStepsDifferFromZero(t *testing.T) {
	ps := series(t0, time.Minute, 10, 0, 10, 0, 6)
	ps[3].Complete = false // an ingestion gap: nothing arrived
	ps[4].Complete = false // the current minute: 6 so far
	got := render(t, Chart{Title: "m", Points: ps, Step: minute, Height: 2, Width: 80})
	lines := strings.Split(got, "\n")
	assert.Equal(t, "10 | ▉   ▉", lines[1])
	assert.Equal(t, "   | ▉   ▉   ░", lines[2])
	assert.Equal(t, " 0 +-------?-?-> time", lines[3])
	assert.Contains(t, got, "░ ? incomplete: counts may still arrive")
	assert.Contains(t, got, ": 2 steps, 6 of the total\n")
	assert.Contains(t, got, "· total 26\n")

	complete := render(t, Chart{Title: "m", Points: series(t0, time.Minute, 10, 0, 10), Step: minute, Height: 2, Width: 80})
	assert.NotContains(t, complete, "?")
	assert.NotContains(t, complete, filling)
	assert.NotContains(t, complete, "incomplete")
}

func TestRenderNothingArrivedYet(t *testing.T) {
	ps := series(t0, time.Minute, 0, 0)
	ps[1].Complete = false
	got := render(t, Chart{Title: "m", Points: ps, Step: minute, Height: 2, Width: 80})
	assert.Contains(t, got, "^ m per 1m · nothing counted so far\n")
	assert.Contains(t, got, "0 +---?-> time")
}

// TestRenderMarksAnomalies: drops and spikes get a mark under their column, and the legend names
// only the kinds shown.
func TestRenderMarksAnomalies(t *testing.T) {
	ps := series(t0, time.Minute, 10, 10, 0, 30, 10)
	ps[2].Anomaly, ps[3].Anomaly = "drop", "spike"
	got := render(t, Chart{Title: "m", Points: ps, Step: minute, Height: 2, Width: 80})
	lines := strings.Split(got, "\n")
	require.GreaterOrEqual(t, len(lines), 6)
	assert.Equal(t, " 0 +-----------> time", lines[3])
	assert.Equal(t, "         ▼ ▲", lines[4], "under the third and fourth bars")
	assert.Contains(t, got, "▼ drop ▲ spike: anomalous against the metric's baseline")

	ps[3].Anomaly = ""
	got = render(t, Chart{Title: "m", Points: ps, Step: minute, Height: 2, Width: 80, Notes: []string{"a note"}})
	assert.Contains(t, got, "\n   ▼ drop: anomalous")
	assert.NotContains(t, got, "spike")
	assert.True(t, strings.HasSuffix(got, "   a note\n"), got)
}

// TestRenderLabelsAreNeverCut: whatever the zone, step, count and width, every time label under
// the axis is a whole step start in the chart's layout, and the first one is always there. The
// first case is the issue's: TZ=America/New_York, 72 hours per day.
func TestRenderLabelsAreNeverCut(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	nyMidnight := time.Date(2026, 11, 22, 0, 0, 0, 0, ny)
	tests := []struct {
		name   string
		loc    *time.Location
		start  time.Time
		step   span
		each   func(time.Time, int) time.Time
		n      int
		layout string
	}{
		{"new york days", ny, nyMidnight, span{days: 1}, func(t time.Time, i int) time.Time { return t.AddDate(0, 0, i) }, 4, "01-02"},
		{"one new york day", ny, nyMidnight, span{days: 1}, func(t time.Time, i int) time.Time { return t.AddDate(0, 0, i) }, 1, "01-02"},
		{"utc days seen from new york", ny, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), span{days: 1},
			func(t time.Time, i int) time.Time { return t.AddDate(0, 0, i) }, 3, "01-02 15:04"},
		{"months", kolkata, time.Date(2026, 1, 1, 0, 0, 0, 0, kolkata), span{months: 1},
			func(t time.Time, i int) time.Time { return t.AddDate(0, i, 0) }, 12, "2006-01"},
		{"minutes", time.UTC, t0, minute, func(t time.Time, i int) time.Time { return t.Add(time.Duration(i) * time.Minute) }, 2, "15:04"},
		{"hours over days", kolkata, t0, span{clock: time.Hour}, func(t time.Time, i int) time.Time { return t.Add(time.Duration(i) * time.Hour) }, 50, "01-02 15:04"},
		{"seconds", time.UTC, t0, span{clock: 10 * time.Second}, func(t time.Time, i int) time.Time { return t.Add(time.Duration(i) * 10 * time.Second) }, 7, "15:04:05"},
		{"years apart", time.UTC, time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), span{days: 7},
			func(t time.Time, i int) time.Time { return t.AddDate(0, 0, 7*i) }, 9, "2006-01-02"},
	}
	for _, tt := range tests {
		for _, width := range []int{8, 9, 12, 20, 80} {
			ps := make([]Point, tt.n)
			for i := range ps {
				ps[i] = Point{Time: tt.each(tt.start, i), Value: float64(i + 1), Complete: true}
			}
			got := render(t, Chart{Title: "m", Points: ps, Step: tt.step, Height: 1, Width: width, Location: tt.loc})
			lines := strings.Split(got, "\n")
			require.GreaterOrEqual(t, len(lines), 4, got)
			labels := strings.Fields(lines[3])
			if strings.Contains(tt.layout, " ") { // a label with a space is two fields
				labels = pairs(labels)
			}
			require.NotEmpty(t, labels, "%s, width %d:\n%s", tt.name, width, got)
			assert.Equal(t, ps[0].Time.In(tt.loc).Format(tt.layout), labels[0], "%s, width %d:\n%s", tt.name, width, got)
			for _, l := range labels {
				_, err := time.ParseInLocation(tt.layout, l, tt.loc)
				assert.NoError(t, err, "%s, width %d: label %q is cut:\n%s", tt.name, width, l, got)
			}
		}
	}
}

func pairs(fields []string) []string {
	var out []string
	for i := 0; i+1 < len(fields); i += 2 {
		out = append(out, fields[i]+" "+fields[i+1])
	}
	return out
}

func TestRenderNewYorkDaysSayTheZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, ny)
	ps := []Point{{Time: start, Value: 3, Complete: true}, {Time: start.AddDate(0, 0, 1), Value: 5, Complete: true},
		{Time: start.AddDate(0, 0, 2), Value: 1}}
	got := render(t, Chart{Title: "new-signup", Points: ps, Step: span{days: 1}, Height: 2, Width: 80, Location: ny})
	assert.Contains(t, got, "^ new-signup per 1d · peak 5 at 11-23\n")
	assert.Contains(t, got, "\n    11-22\n", "the last label does not fit under three bars")
	assert.Contains(t, got, "2026-11-22 00:00 → 11-25 00:00 America/New_York · total 9\n")
}

func TestOptional(t *testing.T) {
	v := func(f float64) *float64 { return &f }
	assert.Equal(t, "?", optional(nil))
	assert.Equal(t, "0", optional(v(0)))
	assert.Equal(t, "6.75", optional(v(6.745)))
	assert.Equal(t, "60", optional(v(60)))
	assert.Equal(t, "8.5", optional(v(8.504)))
	assert.Equal(t, "0.123", optional(v(0.12345)))
	assert.Equal(t, "192", optional(v(191.6)))
	assert.Equal(t, "12346", optional(v(12345.6)))
}
