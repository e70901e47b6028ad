// Command sender is the load the end-to-end tests put on otelcol-track: one process that makes a
// known number of increments of one counter and reports, as one JSON line on stdout, how many it
// made and what its exporter did with them.
//
// With -mode track it counts through the track library (delta temporality, backlog); with
// -mode sdk it counts through the plain OpenTelemetry SDK with its default CUMULATIVE temporality
// and a periodic reader, the way an existing service instrumented with OTel would.
//
// Both modes read the standard OTEL_* variables (endpoint, protocol, headers, service name).
// The increments are spread evenly over -duration, so that a test can crash things in the middle.
//
// Usage:
//
//	sender -mode track -metric e2e-count -n 5000 -duration 8s -interval 1s -attr k=v -attr k2=v2
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

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
	mode := flag.String("mode", "track", "track (the track library, delta) or sdk (plain OTel SDK, cumulative)")
	name := flag.String("metric", "e2e-count", "counter name")
	n := flag.Int64("n", 1000, "number of increments")
	duration := flag.Duration("duration", 5*time.Second, "time over which the increments are spread")
	interval := flag.Duration("interval", time.Second, "export interval")
	flushTimeout := flag.Duration("flush-timeout", 2*time.Minute, "how long shutdown may try to deliver what is left")
	var attrs attrFlag
	flag.Var(&attrs, "attr", "attribute key=value on every increment (repeatable)")
	flag.Parse()

	var r report
	var err error
	switch *mode {
	case "track":
		r, err = runTrack(*name, *n, *duration, *interval, *flushTimeout, attrs)
	case "sdk":
		r, err = runSDK(*name, *n, *duration, *interval, *flushTimeout, attrs)
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

func runSDK(name string, n int64, d, interval, flushTimeout time.Duration, attrs []attribute.KeyValue) (report, error) {
	ctx := context.Background()
	// The SDK's defaults: cumulative temporality for counters, endpoint and headers from OTEL_*.
	exp, err := otlpmetricgrpc.New(ctx)
	if err != nil {
		return report{}, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval))))
	counter, err := mp.Meter("e2e/sender").Int64Counter(name)
	if err != nil {
		return report{}, err
	}
	set := attribute.NewSet(attrs...)
	var sent int64
	spread(n, d, func(k int64) {
		for range k {
			counter.Add(ctx, 1, metric.WithAttributeSet(set))
			sent++
		}
	})
	sctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	return report{Sent: sent}, mp.Shutdown(sctx)
}
