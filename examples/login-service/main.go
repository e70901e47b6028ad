// Command login-service is a stand-in for the design's login service: it
// simulates sign-ups and logins and counts them with track. Its traffic has
// a steady phase, a burst, and a dip to zero (a broken sign-up form), so a
// chart of new-signup per minute shows the anomaly the design wants to catch.
//
// It sends to whatever the OTEL_* variables say (OTLP gRPC to localhost:4317
// by default). When it stops it prints what it counted and what its tracker
// exported: a line on stderr, and a JSON line on stdout (simservice.Report).
//
// Usage:
//
//	login-service [-duration 1m] [-rate 40] [-cycle 60s]
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
	rate := flag.Float64("rate", 40, "logins per second in the steady phase")
	cycle := flag.Duration("cycle", 60*time.Second, "length of one steady → burst → outage cycle")
	flag.Parse()
	if *rate <= 0 || *cycle <= 0 {
		log.Fatal("login-service: -rate and -cycle must be positive")
	}

	var signups, logins int64
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	st := simservice.Run("login-service", *duration, func(ctx context.Context) {
		signups, logins = simulate(ctx, *rate, *cycle, rng)
	})
	r := simservice.NewReport("login-service", st)
	r.Counted = map[string]int64{"new-signup": signups, "new-login": logins}
	if err := r.Write(os.Stdout, os.Stderr); err != nil {
		log.Fatalf("login-service: %v", err)
	}
}

// simulate counts logins and sign-ups at a rate shaped by phase until ctx
// ends, and returns how many of each it counted.
func simulate(ctx context.Context, rate float64, cycle time.Duration, rng *rand.Rand) (signups, logins int64) {
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	methods := []string{"password", "google", "passkey"}
	for {
		select {
		case <-ctx.Done():
			return signups, logins
		case now := <-tick.C:
			factor := phase(now.Sub(start), cycle)
			n := simservice.Poisson(rng, rate*factor*0.05)
			for i := 0; i < n; i++ {
				track.Increment("new-login", attribute.String("method", methods[rng.IntN(len(methods))]))
				logins++
				// Roughly one visitor in four signs up, except while the
				// sign-up form is broken.
				if factor > 0 && rng.IntN(4) == 0 {
					track.Increment("new-signup")
					signups++
				}
			}
		}
	}
}

// phase returns the traffic factor at elapsed time: steady for the first
// half of a cycle, a 3× burst for a sixth, then zero for a sixth (an
// outage), then steady again.
func phase(elapsed, cycle time.Duration) float64 {
	at := float64(elapsed%cycle) / float64(cycle)
	switch {
	case at < 0.5:
		return 1
	case at < 0.5+1.0/6:
		return 3
	case at < 0.5+2.0/6:
		return 0
	default:
		return 1
	}
}
