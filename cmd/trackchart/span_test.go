package main

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSpan(t *testing.T) {
	tests := []struct {
		in   string
		want span
		str  string
	}{
		{"90s", span{clock: 90 * time.Second}, "1m30s"},
		{"15m", span{clock: 15 * time.Minute}, "15m"},
		{"1.5h", span{clock: 90 * time.Minute}, "1h30m"},
		{"7d", span{days: 7}, "1w"},
		{"1d", span{days: 1}, "1d"},
		{"2w", span{days: 14}, "2w"},
		{"1w2d", span{days: 9}, "9d"},
		{"1d12h", span{days: 1, clock: 12 * time.Hour}, "1d12h"},
		{"1mo", span{months: 1}, "1mo"},
		{"3mo", span{months: 3}, "3mo"},
		{"1y", span{months: 12}, "1y"},
		{"1y6mo", span{months: 18}, "18mo"},
		{"500ms", span{clock: 500 * time.Millisecond}, "500ms"},
	}
	for _, tt := range tests {
		got, err := parseSpan(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		assert.Equal(t, tt.str, got.String(), tt.in)
		again, err := parseSpan(got.String())
		require.NoError(t, err, "String reads back: %s", got)
		assert.Equal(t, got, again, tt.in)
	}
	for _, bad := range []string{"", " ", "7", "d", "-1h", "+1h", "1.5d", "0.5w", "1x", "1h-", "0s", "0d0h", "1 day", "P1D"} {
		_, err := parseSpan(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// TestSpanCalendar: a 24h step is a day; days and months move by the calendar of the location,
// across DST too; Postgres gets them in the interval's days and months fields.
func TestSpanCalendar(t *testing.T) {
	assert.Equal(t, span{days: 1}, span{clock: 24 * time.Hour}.calendarDays())
	assert.Equal(t, span{days: 3, clock: time.Hour}, span{clock: 73 * time.Hour}.calendarDays())
	assert.Equal(t, span{clock: 23 * time.Hour}, span{clock: 23 * time.Hour}.calendarDays())

	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	sunday := time.Date(2026, 11, 1, 12, 0, 0, 0, ny) // DST ends at 02:00 that morning
	assert.Equal(t, 25*time.Hour, sunday.Sub(span{days: 1}.before(sunday)))
	assert.Equal(t, 24*time.Hour, sunday.Sub(span{clock: 24 * time.Hour}.before(sunday)), "hours are hours")
	assert.Equal(t, time.Date(2026, 10, 1, 12, 0, 0, 0, ny), span{months: 1}.before(sunday))
	assert.Equal(t, sunday, span{days: 2, clock: time.Hour}.after(span{days: 2, clock: time.Hour}.before(sunday)))

	assert.Equal(t, pgtype.Interval{Months: 2, Days: 7, Microseconds: 90e6, Valid: true}, span{months: 2, days: 7, clock: 90 * time.Second}.interval())
	assert.Equal(t, span{months: 3, days: 3, clock: 3 * time.Minute}, span{months: 1, days: 1, clock: time.Minute}.times(3))
}

func TestDefaultSince(t *testing.T) {
	assert.Equal(t, span{clock: time.Hour}, defaultSince(span{clock: time.Minute}))
	assert.Equal(t, span{clock: 5 * time.Hour}, defaultSince(span{clock: 5 * time.Minute}))
	assert.Equal(t, span{days: 30}, defaultSince(span{days: 1}))
	assert.Equal(t, span{days: 77}, defaultSince(span{days: 7}), "11 weeks")
	assert.Equal(t, span{days: 60}, defaultSince(span{days: 30}), "two steps within 11 weeks")
	assert.Equal(t, span{months: 12}, defaultSince(span{months: 1}))
}
