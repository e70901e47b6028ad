// Command web-signup simulates visitors moving through a four-step sign-up
// form and reports what they do with track.Event: page views, clicks,
// scrolls, each form step, and errors with stack traces. Visitors drop out
// along the way, some steps take long, and the payment step sometimes fails,
// so the collector's funnel shows where users give up.
//
// It sends to whatever the OTEL_* variables say (OTLP gRPC to localhost:4317
// by default). When it stops it prints how many visitors reached each step
// and how many events it exported: a line on stderr, and a JSON line on
// stdout (simservice.Report).
//
// Usage:
//
//	web-signup [-duration 1m] [-visitors 5] [-seed 1]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/trackhq/track/examples/internal/simservice"
	"github.com/trackhq/track/track"
)

// steps are the form's steps, in order, with the share of visitors at one
// step who go on to the next, and the typical time spent on it.
var steps = []struct {
	event   string
	page    string
	keepOn  float64
	typical time.Duration
}{
	{"signup_start", "/signup", 0.80, 2 * time.Second},
	{"signup_profile", "/signup/profile", 0.65, 4 * time.Second},
	{"signup_payment", "/signup/payment", 0.75, 3 * time.Second},
	{"signup_complete", "/signup/done", 0, 0},
}

var countries = []struct{ country, region, city string }{
	{"DE", "BE", "Berlin"}, {"FR", "IDF", "Paris"}, {"US", "CA", "San Francisco"}, {"US", "NY", "New York"}, {"BR", "SP", "São Paulo"},
}

func main() {
	duration := flag.Duration("duration", 0, "how long to keep sending visitors; 0 runs until interrupted")
	perSecond := flag.Float64("visitors", 5, "new visitors per second")
	seed := flag.Uint64("seed", 1, "random seed, for repeatable runs")
	speed := flag.Float64("speed", 1, "time compression: 2 halves every wait")
	flag.Parse()
	if *perSecond <= 0 || *speed <= 0 {
		log.Fatal("web-signup: -visitors and -speed must be positive")
	}

	var reached []int64
	st := simservice.Run("web-signup", *duration, func(ctx context.Context) {
		reached = run(ctx, *perSecond, *speed, rand.New(rand.NewPCG(*seed, *seed^0x5eed)))
	})
	r := simservice.NewReport("web-signup", st)
	for i, s := range steps {
		r.Reached = append(r.Reached, simservice.StepCount{Step: s.event, Visitors: reached[i]})
	}
	if err := r.Write(os.Stdout, os.Stderr); err != nil {
		log.Fatalf("web-signup: %v", err)
	}
}

// run starts visitors at perSecond until ctx ends, waits for those under way
// to finish, and returns how many reached each step.
func run(ctx context.Context, perSecond, speed float64, rng *rand.Rand) []int64 {
	var (
		mu      sync.Mutex
		reached = make([]int64, len(steps))
		wg      sync.WaitGroup
		id      int
	)
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return reached
		case <-tick.C:
			id++
			v := visitor{id: fmt.Sprintf("user-%06d", id), place: countries[rng.IntN(len(countries))], rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), speed: speed}
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := v.walk()
				mu.Lock()
				for i := 0; i <= last; i++ {
					reached[i]++
				}
				mu.Unlock()
			}()
		}
	}
}

type visitor struct {
	id    string
	place struct{ country, region, city string }
	rng   *rand.Rand
	speed float64
}

// walk takes the visitor through the form and returns the last step reached.
func (v visitor) walk() int {
	ctx := context.Background()
	user, where := track.User(v.id), track.Location(v.place.country, v.place.region, v.place.city)
	for i, s := range steps {
		page := track.Page(s.page)
		track.Event(ctx, "page_view", page, user, where)
		track.Event(ctx, s.event, page, user, where, track.Attr(attribute.Int("step", i+1)))
		if s.keepOn == 0 {
			return i
		}
		track.Event(ctx, "scroll", page, user, track.Scroll(25+v.rng.IntN(76)))
		v.wait(s.typical)
		if s.event == "signup_payment" && v.rng.Float64() < 0.12 {
			// The card processor rejects some cards; the message carries
			// the kind of data the collector must scrub.
			err := fmt.Errorf("charging card 4111 1111 1111 1111 for %s@example.com: %w", v.id, errCardDeclined)
			track.Event(ctx, "error", page, user, where, track.Error(err))
			return i
		}
		if v.rng.Float64() > s.keepOn {
			return i // gave up
		}
		track.Event(ctx, "click", page, user, track.Click("next"))
	}
	return len(steps) - 1
}

var errCardDeclined = errors.New("card declined")

// wait sleeps for about typical: exponentially distributed, so a few
// visitors take much longer than most.
func (v visitor) wait(typical time.Duration) {
	time.Sleep(time.Duration(v.rng.ExpFloat64() * float64(typical) / v.speed))
}
