// Command sender is the load the end-to-end tests put on otelcol-track: one process that makes a
// known number of increments of one counter and reports, as one JSON line on stdout, how many it
// made and what its exporter did with them.
//
// With -mode track it counts through the track library (delta temporality, backlog); with
// -mode sdk it counts through the plain OpenTelemetry SDK with its default CUMULATIVE temporality
// and a periodic reader, the way an existing service instrumented with OTel would, over gRPC or,
// with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, OTLP/HTTP. In sdk mode, -baseline n first counts
// n and exports them at once, before the -n increments, and -start-age d makes every exported
// start time d older, as if the process had been running for d: together they make a stream the
// collector first sees long after it started, whose first value is a baseline.
//
// With -mode events it emits -n product events through track.Event instead, the names taken in
// turn from -events, each for one of -users users (user ids derived from -seed), with a page, a
// location and one typed field per kind (click, scroll, error); it reports how many it emitted of
// each name. With -pii every event also carries an email and a card number in an attribute and a
// city in its location, and every second one is an "error" event whose message (through
// track.Error) or stack trace (a recovered panic's) holds them: what the collector must scrub.
//
// All modes read the standard OTEL_* variables (endpoint, protocol, headers, service name).
// The increments are spread evenly over -duration, so that a test can crash things in the middle.
//
// Usage:
//
//	sender -mode track -metric e2e-count -n 5000 -duration 8s -interval 1s -attr k=v -attr k2=v2
//	sender -mode events -events page_view,click,scroll -n 6000 -users 500 -seed 7 -duration 4s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/trackhq/track/track"
)

// report is what the sender prints when it is done.
type report struct {
	Mode     string `json:"mode"`
	Sent     int64  `json:"sent"`
	Exported uint64 `json:"exported_points"`
	Failures uint64 `json:"export_failures"`
	Dropped  uint64 `json:"dropped_points"`
	Backlog  int64  `json:"backlog_points"`
	Error    string `json:"error,omitempty"`
	// Sdk mode only: what -baseline counted (included in Sent).
	Baseline int64 `json:"baseline,omitempty"`
	// Events mode only.
	Events         map[string]int64 `json:"events,omitempty"`
	EventsExported uint64           `json:"events_exported,omitempty"`
	EventsDropped  uint64           `json:"events_dropped,omitempty"`
	EventsBacklog  int64            `json:"events_backlog,omitempty"`
}

type attrFlag []attribute.KeyValue

func (a *attrFlag) String() string { return fmt.Sprint(*a) }
func (a *attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("attribute %q: want key=value", s)
	}
	*a = append(*a, attribute.String(k, v))
	return nil
}

func main() {
	mode := flag.String("mode", "track", "track (the track library, delta), sdk (plain OTel SDK, cumulative) or events (track.Event)")
	name := flag.String("metric", "e2e-count", "counter name")
	n := flag.Int64("n", 1000, "number of increments")
	duration := flag.Duration("duration", 5*time.Second, "time over which the increments are spread")
	interval := flag.Duration("interval", time.Second, "export interval")
	flushTimeout := flag.Duration("flush-timeout", 2*time.Minute, "how long shutdown may try to deliver what is left")
	var attrs attrFlag
	flag.Var(&attrs, "attr", "attribute key=value on every increment (repeatable)")
	baseline := flag.Int64("baseline", 0, "sdk mode: increments counted and exported at once, before the -n")
	startAge := flag.Duration("start-age", 0, "sdk mode: how much older than the process every exported start time is")
	var ev eventsSpec
	flag.StringVar(&ev.names, "events", "page_view,click,scroll", "events mode: event names, taken in turn")
	flag.IntVar(&ev.users, "users", 100, "events mode: distinct users")
	flag.Uint64Var(&ev.seed, "seed", 1, "events mode: seed of the user ids")
	flag.BoolVar(&ev.pii, "pii", false, "events mode: put an email, a card number and a city in every event")
	flag.Parse()

	var r report
	var err error
	switch *mode {
	case "track":
		r, err = runTrack(*name, *n, *duration, *interval, *flushTimeout, attrs)
	case "sdk":
		r, err = runSDK(*name, *n, *duration, *interval, *flushTimeout, attrs, *baseline, *startAge)
	case "events":
		r, err = runEvents(ev, *n, *duration, *interval, *flushTimeout)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	r.Mode = *mode
	if err != nil {
		r.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	if err != nil {
		os.Exit(1)
	}
}

// spread calls inc n times in total, evenly over d, in steps of 10 ms.
func spread(n int64, d time.Duration, inc func(k int64)) {
	const step = 10 * time.Millisecond
	steps := max(int64(d/step), 1)
	start := time.Now()
	var done int64
	for i := int64(1); i <= steps; i++ {
		target := n * i / steps
		if k := target - done; k > 0 {
			inc(k)
			done = target
		}
		if sleep := time.Until(start.Add(time.Duration(i) * step)); sleep > 0 {
			time.Sleep(sleep)
		}
	}
}

func runTrack(name string, n int64, d, interval, flushTimeout time.Duration, attrs []attribute.KeyValue) (report, error) {
	t, err := track.New(context.Background(), track.WithInterval(interval))
	if err != nil {
		return report{}, err
	}
	var sent int64
	spread(n, d, func(k int64) {
		for range k {
			t.Increment(name, attrs...)
			sent++
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	err = t.Shutdown(ctx)
	st := t.Stats()
	return report{Sent: sent, Exported: st.PointsExported, Failures: st.ExportFailures,
		Dropped: st.PointsDropped, Backlog: st.PointsInBacklog}, err
}

func runSDK(name string, n int64, d, interval, flushTimeout time.Duration, attrs []attribute.KeyValue,
	baseline int64, startAge time.Duration) (report, error) {
	ctx := context.Background()
	// The SDK's defaults: cumulative temporality for counters, endpoint, headers and protocol
	// from OTEL_*.
	var exp sdkmetric.Exporter
	var err error
	if os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL") == "http/protobuf" {
		exp, err = otlpmetrichttp.New(ctx)
	} else {
		exp, err = otlpmetricgrpc.New(ctx)
	}
	if err != nil {
		return report{}, err
	}
	if startAge > 0 {
		exp = agedExporter{exp, startAge}
	}
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	counter, err := mp.Meter("e2e/sender").Int64Counter(name)
	if err != nil {
		return report{}, err
	}
	set := attribute.NewSet(attrs...)
	var sent int64
	if baseline > 0 {
		counter.Add(ctx, baseline, metric.WithAttributeSet(set))
		sent += baseline
		if err := reader.ForceFlush(ctx); err != nil {
			return report{Sent: sent, Baseline: baseline}, fmt.Errorf("exporting the baseline: %w", err)
		}
	}
	spread(n, d, func(k int64) {
		for range k {
			counter.Add(ctx, 1, metric.WithAttributeSet(set))
			sent++
		}
	})
	sctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	return report{Sent: sent, Baseline: baseline}, mp.Shutdown(sctx)
}

// agedExporter moves the start time of every exported Sum point age back, as if the process had
// been running for age longer.
type agedExporter struct {
	sdkmetric.Exporter
	age time.Duration
}

func (a agedExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	for i := range rm.ScopeMetrics {
		for j := range rm.ScopeMetrics[i].Metrics {
			if sum, ok := rm.ScopeMetrics[i].Metrics[j].Data.(metricdata.Sum[int64]); ok {
				for k := range sum.DataPoints {
					sum.DataPoints[k].StartTime = sum.DataPoints[k].StartTime.Add(-a.age)
				}
			}
		}
	}
	return a.Exporter.Export(ctx, rm)
}

// eventsSpec is what -mode events sends.
type eventsSpec struct {
	names string
	users int
	seed  uint64
	pii   bool
}

// The sensitive values -pii puts into events.
const (
	piiEmail = "bob.tester@example.org"
	piiCard  = "4111 1111 1111 1111"
	piiCity  = "Zwickau"
)

// errCharge is the error -pii events report.
var errCharge = errors.New("card declined")

func runEvents(s eventsSpec, n int64, d, interval, flushTimeout time.Duration) (report, error) {
	names := strings.Split(s.names, ",")
	if s.users <= 0 || len(names) == 0 || names[0] == "" {
		return report{}, fmt.Errorf("-events and -users must not be empty")
	}
	t, err := track.New(context.Background(), track.WithInterval(interval))
	if err != nil {
		return report{}, err
	}
	ctx := context.Background()
	counts := map[string]int64{}
	var sent int64
	emit := func(i int64) {
		name := names[i%int64(len(names))]
		user := fmt.Sprintf("e2e-user-%d-%07d", s.seed, i%int64(s.users))
		fields := []track.EventField{track.Page("/e2e/" + name), track.User(user)}
		city := ""
		if s.pii {
			city = piiCity
			fields = append(fields, track.Attr(attribute.String("contact", "mail "+piiEmail+" or call")),
				track.Attr(attribute.String("payment", "paid with "+piiCard)))
		}
		fields = append(fields, track.Location("DE", "SN", city))
		switch {
		case s.pii && i%4 == 1:
			// An error whose message holds the PII: track.Error puts it in exception.message and
			// the body, and captures the stack.
			name = "error"
			fields = append(fields, track.Error(fmt.Errorf("charging %s for %s: %w", piiCard, piiEmail, errCharge)))
		case s.pii && i%4 == 3:
			// A recovered panic: the PII is inside the stack trace, as Go prints a panic.
			name = "error"
			msg := fmt.Sprintf("charging %s for %s", piiCard, piiEmail)
			fields = append(fields, track.Attr(attribute.String(track.KeyErrorType, "panic")),
				track.Attr(attribute.String(track.KeyErrorMsg, "panic")),
				track.Attr(attribute.String(track.KeyStackTrace, "panic: "+msg+"\n\ngoroutine 1 [running]:\n"+string(debug.Stack()))))
		case strings.HasPrefix(name, "click"):
			fields = append(fields, track.Click(fmt.Sprintf("button-%d", i%3)))
		case strings.HasPrefix(name, "scroll"):
			fields = append(fields, track.Scroll(int(i%100)))
		}
		t.Event(ctx, name, fields...)
		counts[name]++
		sent++
	}
	var i int64
	spread(n, d, func(k int64) {
		for range k {
			emit(i)
			i++
		}
	})
	sctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	err = t.Shutdown(sctx)
	st := t.Stats()
	return report{Sent: sent, Events: counts, Exported: st.PointsExported, Failures: st.ExportFailures,
		EventsExported: st.EventsExported, EventsDropped: st.EventsDropped, EventsBacklog: st.EventsInBacklog}, err
}
