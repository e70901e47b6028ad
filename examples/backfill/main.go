// Command backfill sends a past stretch of per-minute history for the example services to an OTLP
// endpoint, so that a demo that runs for a minute still has charts with something to show: the
// login service's new-signup and new-login, and the payment service's card-checked and
// fraudulent-card, one delta point per series and minute, for the last -minutes minutes.
//
// The history has the shapes the design wants to catch: signups burst, then drop to zero for a
// few minutes (a broken sign-up form); fraudulent cards spike during a card-testing attack. It goes
// through the collector like any other data (OTLP/gRPC, delta sums with past timestamps), so
// pgrollup counts it into the minute, hour and day rollups.
//
// When it is done it prints the totals it sent per counter: a line on stderr, and a JSON line on
// stdout (simservice.Report).
//
// Usage:
//
//	backfill [-endpoint localhost:4317] [-minutes 30] [-seed 1]
package main

import (
	"context"
	"flag"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"time"

	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	res "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/trackhq/track/examples/internal/simservice"
)

func main() {
	endpoint := flag.String("endpoint", "localhost:4317", "OTLP/gRPC endpoint (host:port, plaintext)")
	minutes := flag.Int("minutes", 30, "minutes of history, ending with the minute before the current one")
	seed := flag.Uint64("seed", 1, "random seed of the history")
	flag.Parse()
	if *minutes < 1 {
		log.Fatal("backfill: -minutes must be at least 1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("backfill: %v", err)
	}
	defer conn.Close()
	client := colmetrics.NewMetricsServiceClient(conn)

	h := history(time.Now().UTC().Truncate(time.Minute), *minutes, rand.New(rand.NewPCG(*seed, *seed+1)))
	for _, svc := range h {
		if _, err := client.Export(ctx, &colmetrics.ExportMetricsServiceRequest{ResourceMetrics: []*metrics.ResourceMetrics{svc.request()}}); err != nil {
			log.Fatalf("backfill: exporting %s: %v", svc.name, err)
		}
	}
	r := simservice.Report{Service: "backfill", Minutes: *minutes, Counted: map[string]int64{}}
	for _, svc := range h {
		for _, c := range svc.counters {
			r.Counted[c.name] += c.total()
		}
	}
	if err := r.Write(os.Stdout, os.Stderr); err != nil {
		log.Fatalf("backfill: %v", err)
	}
}

// service is the history of one service.
type service struct {
	name     string
	counters []*counter
}

// counter is the per-minute history of one series.
type counter struct {
	name   string
	attrs  map[string]string
	starts []time.Time
	values []int64
}

func (c *counter) total() int64 {
	var n int64
	for _, v := range c.values {
		n += v
	}
	return n
}

// history builds the services' counts for the minutes before now (a minute boundary).
func history(now time.Time, minutes int, rng *rand.Rand) []service {
	login := service{name: "login-service"}
	signup := &counter{name: "new-signup", attrs: map[string]string{}}
	loginC := &counter{name: "new-login", attrs: map[string]string{"method": "password"}}
	login.counters = []*counter{signup, loginC}
	pay := service{name: "payment-service"}
	checked := &counter{name: "card-checked", attrs: map[string]string{"card.brand": "visa", "result": "approved"}}
	fraud := &counter{name: "fraudulent-card", attrs: map[string]string{"card.brand": "visa", "reason": "card-testing"}}
	pay.counters = []*counter{checked, fraud}

	for i := range minutes {
		at := float64(i) / float64(minutes)
		start := now.Add(time.Duration(i-minutes) * time.Minute)
		// Signups: steady with noise, a burst at 55-65%, none at 75-85% (a broken form).
		s := 600.0
		switch {
		case at >= 0.55 && at < 0.65:
			s = 1500
		case at >= 0.75 && at < 0.85:
			s = 0
		}
		// Fraud: a trickle, and a card-testing attack at 35-45%.
		f, c := 20.0, 1800.0
		if at >= 0.35 && at < 0.45 {
			f, c = 650, 2600
		}
		add := func(ctr *counter, mean float64) {
			ctr.starts = append(ctr.starts, start)
			ctr.values = append(ctr.values, noisy(rng, mean))
		}
		add(signup, s)
		add(loginC, s*4)
		add(checked, c)
		add(fraud, f)
	}
	return []service{login, pay}
}

// noisy returns mean with about 8% of normal noise, never negative.
func noisy(rng *rand.Rand, mean float64) int64 {
	if mean == 0 {
		return 0
	}
	return int64(math.Max(0, math.Round(mean*(1+0.08*rng.NormFloat64()))))
}

// request turns a service's history into one OTLP resource: one delta sum per counter, one point
// per minute, each covering that minute.
func (s service) request() *metrics.ResourceMetrics {
	str := func(k, v string) *common.KeyValue {
		return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
	}
	var ms []*metrics.Metric
	for _, c := range s.counters {
		var attrs []*common.KeyValue
		for k, v := range c.attrs {
			attrs = append(attrs, str(k, v))
		}
		points := make([]*metrics.NumberDataPoint, len(c.values))
		for i, v := range c.values {
			points[i] = &metrics.NumberDataPoint{
				Attributes:        attrs,
				StartTimeUnixNano: uint64(c.starts[i].UnixNano()),
				TimeUnixNano:      uint64(c.starts[i].Add(time.Minute - time.Millisecond).UnixNano()),
				Value:             &metrics.NumberDataPoint_AsInt{AsInt: v},
			}
		}
		ms = append(ms, &metrics.Metric{Name: c.name, Data: &metrics.Metric_Sum{Sum: &metrics.Sum{
			AggregationTemporality: metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
			IsMonotonic:            true,
			DataPoints:             points,
		}}})
	}
	return &metrics.ResourceMetrics{
		Resource:     &res.Resource{Attributes: []*common.KeyValue{str("service.name", s.name)}},
		ScopeMetrics: []*metrics.ScopeMetrics{{Scope: &common.InstrumentationScope{Name: "backfill"}, Metrics: ms}},
	}
}
