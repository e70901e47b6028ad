package simservice

import (
	"context"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trackhq/track/track"
)

// flushTimeout bounds how long Run waits for the last export and backlog.
const flushTimeout = 30 * time.Second

// Run starts the package-level tracker (named service unless
// OTEL_SERVICE_NAME says otherwise), calls simulate with a context that ends
// on SIGINT, SIGTERM or after duration (0: only on a signal), then exports
// what is left and returns the tracker's statistics. It exits the process
// if track cannot start.
func Run(service string, duration time.Duration, simulate func(context.Context)) track.Statistics {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}

	var opts []track.Option
	if os.Getenv("OTEL_SERVICE_NAME") == "" {
		opts = append(opts, track.WithServiceName(service))
	}
	shutdown, err := track.Start(context.Background(), opts...)
	if err != nil {
		log.Fatalf("%s: %v", service, err)
	}

	simulate(ctx)

	flushCtx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := shutdown(flushCtx); err != nil {
		log.Printf("%s: %v", service, err)
	}
	return track.Stats()
}

// Poisson draws from a Poisson distribution with mean lambda (Knuth's
// method, fine for the small means of one tick of traffic).
func Poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
