package simservice

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/trackhq/track/track"
)

// Report is what an example program did, printed when it stops: a line for people on stderr, and
// one JSON line (the last line of stdout) for programs, such as the demo driver (examples/demo),
// which checks that Postgres holds exactly what was counted.
type Report struct {
	// Service is the program's name.
	Service string `json:"service"`
	// Counted is the total of the increments made per counter name, over every attribute set.
	Counted map[string]int64 `json:"counted,omitempty"`
	// Reached is, for a funnel (web-signup), the number of visitors reaching each step, in order.
	Reached []StepCount `json:"reached,omitempty"`
	// Minutes is, for backfill, the minutes of history sent.
	Minutes int `json:"minutes,omitempty"`
	// The tracker's statistics when it stopped (track.Statistics); zero for backfill.
	PointsExported  uint64 `json:"points_exported"`
	PointsDropped   uint64 `json:"points_dropped"`
	PointsInBacklog int64  `json:"points_in_backlog"`
	ExportFailures  uint64 `json:"export_failures"`
	EventsExported  uint64 `json:"events_exported"`
	EventsDropped   uint64 `json:"events_dropped"`
	EventsInBacklog int64  `json:"events_in_backlog"`
	Refused         uint64 `json:"refused"`
}

// StepCount is the number of visitors who reached one step of a funnel.
type StepCount struct {
	Step     string `json:"step"`
	Visitors int64  `json:"visitors"`
}

// NewReport returns the report of service with the tracker statistics st.
func NewReport(service string, st track.Statistics) Report {
	return Report{
		Service:         service,
		PointsExported:  st.PointsExported,
		PointsDropped:   st.PointsDropped,
		PointsInBacklog: st.PointsInBacklog,
		ExportFailures:  st.ExportFailures,
		EventsExported:  st.EventsExported,
		EventsDropped:   st.EventsDropped,
		EventsInBacklog: st.EventsInBacklog,
		Refused:         st.Refused,
	}
}

// String is the report for people, on one line.
func (r Report) String() string {
	var b strings.Builder
	b.WriteString(r.Service + ":")
	if len(r.Counted) > 0 {
		b.WriteString(" counted")
		for _, name := range slices.Sorted(maps.Keys(r.Counted)) {
			fmt.Fprintf(&b, " %s=%d", name, r.Counted[name])
		}
		if r.Minutes > 0 {
			fmt.Fprintf(&b, " over %d minutes", r.Minutes)
		}
	}
	if len(r.Reached) > 0 {
		b.WriteString(" visitors reaching each step:")
		for _, s := range r.Reached {
			fmt.Fprintf(&b, " %s=%d", s.Step, s.Visitors)
		}
		fmt.Fprintf(&b, "; exported %d events, %d dropped", r.EventsExported, r.EventsDropped)
	} else if r.Minutes == 0 {
		fmt.Fprintf(&b, "; exported %d points, %d dropped, %d failed exports", r.PointsExported, r.PointsDropped, r.ExportFailures)
	}
	return b.String()
}

// Write prints the report: String on people, then the JSON line on out.
func (r Report) Write(out, people io.Writer) error {
	if _, err := fmt.Fprintln(people, r.String()); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// ReadReport decodes the report in the last non-empty line of out (a program's stdout).
func ReadReport(out []byte) (Report, error) {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			last = append(last[:0], line...)
		}
	}
	if err := sc.Err(); err != nil {
		return Report{}, fmt.Errorf("reading the report: %w", err)
	}
	if last == nil {
		return Report{}, errors.New("no report: the output is empty")
	}
	var r Report
	if err := json.Unmarshal(last, &r); err != nil {
		return Report{}, fmt.Errorf("decoding the report %q: %w", last, err)
	}
	if r.Service == "" {
		return Report{}, fmt.Errorf("the report %q names no service", last)
	}
	return r, nil
}
