// Command payment-service is a stand-in for the design's payment service: it checks simulated
// card payments and counts them with track:
//
//	track.Increment("card-checked", brand, result)       // every check: approved, declined or fraudulent
//	track.Increment("fraudulent-card", brand, reason)    // every card flagged as fraudulent
//
// Its traffic follows a cycle that shows what the charts are for: steady checks with a trickle of
// fraud, then a card-testing attack (a burst of fraudulent cards), then an outage of the card
// processor during which nothing is checked at all (a dip to zero), then steady again.
//
// It sends to whatever the OTEL_* variables say (OTLP gRPC to localhost:4317 by default). When it
// stops it prints what it counted and what its tracker exported: a line on stderr, and a JSON line
// on stdout (simservice.Report).
//
// Usage:
//
//	payment-service [-duration 1m] [-rate 30] [-cycle 60s]
package main

import (
	"context"
	"flag"
	"log"
	"math/rand/v2"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/trackhq/track/examples/internal/simservice"
	"github.com/trackhq/track/track"
)

func main() {
	duration := flag.Duration("duration", 0, "how long to run; 0 runs until interrupted")
	rate := flag.Float64("rate", 30, "card checks per second in the steady phase")
	cycle := flag.Duration("cycle", 60*time.Second, "length of one steady → attack → outage cycle")
	flag.Parse()
	if *rate <= 0 || *cycle <= 0 {
		log.Fatal("payment-service: -rate and -cycle must be positive")
	}

	var checked, fraudulent int64
	st := simservice.Run("payment-service", *duration, func(ctx context.Context) {
		checked, fraudulent = simulate(ctx, *rate, *cycle, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	})
	r := simservice.NewReport("payment-service", st)
	r.Counted = map[string]int64{"card-checked": checked, "fraudulent-card": fraudulent}
	if err := r.Write(os.Stdout, os.Stderr); err != nil {
		log.Fatalf("payment-service: %v", err)
	}
}

// phase is the traffic of one moment of the cycle.
type phase struct {
	name      string
	checks    float64 // factor on the steady rate of checks
	fraudRate float64 // share of checks that are fraudulent
}

// phaseAt returns the phase at elapsed time: steady for the first 40% of a cycle, a card-testing
// attack for the next 15% (twice the checks, a third of them fraudulent), steady for 20%, an
// outage of the card processor for 15% (nothing is checked), then steady again.
func phaseAt(elapsed, cycle time.Duration) phase {
	at := float64(elapsed%cycle) / float64(cycle)
	switch {
	case at < 0.40:
		return phase{"steady", 1, 0.02}
	case at < 0.55:
		return phase{"card-testing attack", 2, 0.35}
	case at < 0.75:
		return phase{"steady", 1, 0.02}
	case at < 0.90:
		return phase{"processor outage", 0, 0}
	default:
		return phase{"steady", 1, 0.02}
	}
}

var (
	brands      = []string{"visa", "mastercard", "amex"}
	declineRate = 0.05
	reasons     = []string{"stolen", "velocity"}
)

// simulate checks cards at the rate the phase says until ctx ends, and returns how many cards
// it checked and how many of them were fraudulent.
func simulate(ctx context.Context, rate float64, cycle time.Duration, rng *rand.Rand) (checked, fraudulent int64) {
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return checked, fraudulent
		case now := <-tick.C:
			p := phaseAt(now.Sub(start), cycle)
			for range simservice.Poisson(rng, rate*p.checks*0.05) {
				c, f := check(rng, p)
				checked += c
				fraudulent += f
			}
		}
	}
}

// check counts one card check and returns 1, 1 when it was fraudulent and 1, 0 otherwise.
func check(rng *rand.Rand, p phase) (checked, fraudulent int64) {
	brand := attribute.String("card.brand", brands[rng.IntN(len(brands))])
	switch r := rng.Float64(); {
	case r < p.fraudRate:
		reason := reasons[rng.IntN(len(reasons))]
		if p.name == "card-testing attack" {
			reason = "card-testing"
		}
		track.Increment("card-checked", brand, attribute.String("result", "fraudulent"))
		track.Increment("fraudulent-card", brand, attribute.String("reason", reason))
		return 1, 1
	case r < p.fraudRate+declineRate:
		track.Increment("card-checked", brand, attribute.String("result", "declined"))
	default:
		track.Increment("card-checked", brand, attribute.String("result", "approved"))
	}
	return 1, 0
}
