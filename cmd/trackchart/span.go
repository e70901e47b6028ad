package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// span is a length of time as trackchart's flags write it: Go's duration units (h, m, s, ms, us,
// ns) extended with calendar units: d (a day), w (7 days), mo (a month) and y (12 months), for
// example 90s, 15m, 6h, 7d, 2w, 1mo, 1d12h.
//
// Calendar units are kept apart from the clock part, as Postgres keeps them apart in an interval:
// a day is a local calendar day (23 or 25 hours across a DST change), a month runs to the same
// day of the next month. A span is a value; it is safe for concurrent use.
type span struct {
	months int
	days   int
	clock  time.Duration
}

const day = 24 * time.Hour

// spanToken is one number and its unit. The longer units come first in the alternation so that
// "mo" and "ms" are not read as "m".
var spanToken = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(mo|ms|us|µs|ns|y|w|d|h|m|s)`)

// errSpanForm says which forms a span takes; flag errors end with it.
var errSpanForm = errors.New("want numbers with units s, m, h, d, w, mo or y, such as 90s, 15m, 6h, 7d, 2w, 1mo or 1d12h")

// parseSpan reads s (see span). It refuses an empty string, signs, fractions of calendar units
// and zero.
func parseSpan(s string) (span, error) {
	var sp span
	rest := strings.TrimSpace(s)
	if rest == "" {
		return sp, errSpanForm
	}
	for rest != "" {
		m := spanToken.FindStringSubmatch(rest)
		if m == nil {
			return span{}, errSpanForm
		}
		rest = rest[len(m[0]):]
		num, unit := m[1], m[2]
		switch unit {
		case "d", "w", "mo", "y":
			n, err := strconv.Atoi(num)
			if err != nil {
				return span{}, fmt.Errorf("%s%s: days, weeks, months and years must be whole numbers", num, unit)
			}
			switch unit {
			case "d":
				sp.days += n
			case "w":
				sp.days += 7 * n
			case "mo":
				sp.months += n
			case "y":
				sp.months += 12 * n
			}
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return span{}, errSpanForm
			}
			sp.clock += d
		}
	}
	if sp.isZero() {
		return span{}, errors.New("must be longer than zero")
	}
	return sp, nil
}

func (s span) isZero() bool { return s.months == 0 && s.days == 0 && s.clock == 0 }

// calendarDays moves whole days of the clock part into days, so that a step of 24h is a day and
// starts at local midnight as a step of 1d does.
func (s span) calendarDays() span {
	s.days += int(s.clock / day)
	s.clock %= day
	return s
}

// times multiplies s by k.
func (s span) times(k int) span {
	return span{months: s.months * k, days: s.days * k, clock: s.clock * time.Duration(k)}
}

// before returns t less s, the calendar units counted in t's location.
func (s span) before(t time.Time) time.Time {
	return t.AddDate(0, -s.months, -s.days).Add(-s.clock)
}

// interval is s as a Postgres interval, with the calendar units in its months and days fields.
func (s span) interval() pgtype.Interval {
	return pgtype.Interval{Months: int32(s.months), Days: int32(s.days), Microseconds: s.clock.Microseconds(), Valid: true}
}

// String prints s in the form parseSpan reads, with the largest units: 1y, 2mo, 1w, 3d, 1h30m, 90ms.
func (s span) String() string {
	if s.isZero() {
		return "0s"
	}
	var b strings.Builder
	if s.months%12 == 0 && s.months != 0 {
		fmt.Fprintf(&b, "%dy", s.months/12)
	} else if s.months != 0 {
		fmt.Fprintf(&b, "%dmo", s.months)
	}
	if s.days%7 == 0 && s.days != 0 {
		fmt.Fprintf(&b, "%dw", s.days/7)
	} else if s.days != 0 {
		fmt.Fprintf(&b, "%dd", s.days)
	}
	c := s.clock
	if c%time.Second != 0 {
		b.WriteString(c.String())
		return b.String()
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if c >= u.d {
			fmt.Fprintf(&b, "%d%s", c/u.d, u.name)
			c %= u.d
		}
	}
	return b.String()
}

// spanFlag is a flag.Value holding a span.
type spanFlag struct{ span span }

func (f *spanFlag) String() string { return f.span.String() }

func (f *spanFlag) Set(s string) error {
	sp, err := parseSpan(s)
	if err != nil {
		return err
	}
	f.span = sp
	return nil
}

// after returns t plus s, the calendar units counted in t's location.
func (s span) after(t time.Time) time.Time {
	return t.AddDate(0, s.months, s.days).Add(s.clock)
}
