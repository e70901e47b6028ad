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
		ps[i] = Point{Time: start.Add(time.Duration(i) * step), Value: v}
	}
	return ps
}

var t0 = time.Date(2026, 11, 21, 22, 10, 0, 0, time.UTC)

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
		Step:   time.Minute, Height: 4, Width: 80,
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
	got := render(t, Chart{Title: "m", Points: series(t0, time.Minute, 1, 2, 3, 4, 5, 6, 7, 8), Step: time.Minute, Height: 2, Width: 80})
	assert.Contains(t, got, "\n    22:10     22:17\n")
}

func TestRenderShowsADipToZeroAsAGap(t *testing.T) {
	got := render(t, Chart{Title: "fraudulent-card", Points: series(t0, time.Minute, 10, 10, 0, 0, 10, 0.01),
		Step: time.Minute, Height: 2, Width: 80})
	lines := strings.Split(got, "\n")
	require.GreaterOrEqual(t, len(lines), 4)
	assert.Equal(t, "10 | ▉ ▉     ▉", lines[1])
	// The bottom row: zeros are empty, a tiny non-zero count still shows.
	assert.Equal(t, "   | ▉ ▉     ▉ ▁", lines[2])
	assert.Contains(t, got, "total 30.01")
}

func TestRenderNothingCounted(t *testing.T) {
	got := render(t, Chart{Title: "new-signup", Points: series(t0, time.Minute, 0, 0, 0), Step: time.Minute, Height: 3, Width: 80})
	assert.Contains(t, got, "nothing counted")
	assert.Contains(t, got, "total 0")
	assert.NotContains(t, got, full)
}

func TestRenderNoPoints(t *testing.T) {
	got := render(t, Chart{Title: "x", Step: time.Minute, Height: 3, Width: 80})
	assert.Equal(t, "^ x: no data in the range\n", got)
}

func TestRenderMergesStepsBeyondTheWidth(t *testing.T) {
	values := make([]float64, 120)
	for i := range values {
		values[i] = 1
	}
	got := render(t, Chart{Title: "m", Points: series(t0, time.Minute, values...), Step: time.Minute, Height: 2, Width: 40})
	assert.Contains(t, got, "per 3m · peak 3")
	assert.Contains(t, got, "total 120")
	// 40 bars, packed without gaps since 79 columns do not fit in 40.
	assert.Contains(t, got, "3 |"+strings.Repeat(full, 40)+"\n")
	assert.Contains(t, got, "   22:10                              00:07\n")
}

func TestRenderTimeZoneAndLongRanges(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	got := render(t, Chart{Title: "d", Points: series(t0, 24*time.Hour, 1, 2), Step: 24 * time.Hour, Height: 1, Width: 80, Location: loc})
	assert.Contains(t, got, "per 1d · peak 2 at 11-22 23:10")
	assert.Contains(t, got, "CET")
}

func TestMerge(t *testing.T) {
	ps, step := merge(series(t0, time.Minute, 1, 2, 3, 4, 5), time.Minute, 2)
	assert.Equal(t, 3*time.Minute, step)
	require.Len(t, ps, 2)
	assert.Equal(t, 6.0, ps[0].Value)
	assert.Equal(t, 9.0, ps[1].Value)
	assert.Equal(t, t0.Add(3*time.Minute), ps[1].Time)
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "132", formatValue(132))
	assert.Equal(t, "1.5", formatValue(1.5))
	assert.Equal(t, "1m", formatStep(time.Minute))
	assert.Equal(t, "6h", formatStep(6*time.Hour))
	assert.Equal(t, "30s", formatStep(30*time.Second))
}

func TestRunRefusesBadFlags(t *testing.T) {
	t.Setenv("TRACK_PG_DSN", "")
	cases := map[string][]string{
		"-metric is required":     {},
		"-dsn is required":        {"-metric", "x"},
		"not a lowercase SQL":     {"-metric", "x", "-dsn", "postgres://x", "-schema", "A;"},
		"-step must be positive":  {"-metric", "x", "-dsn", "postgres://x", "-step", "0s"},
		"-to must be after -from": {"-metric", "x", "-dsn", "postgres://x", "-from", "2026-01-02T00:00:00Z", "-to", "2026-01-01T00:00:00Z"},
		"-from: parsing time":     {"-metric", "x", "-dsn", "postgres://x", "-from", "yesterday"},
	}
	for want, args := range cases {
		err := run(t.Context(), args, &strings.Builder{})
		assert.ErrorContains(t, err, want, "%v", args)
	}
}
