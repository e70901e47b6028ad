package track

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
)

// std is the package-level tracker. It aggregates from process start; Start
// attaches an export pipeline to it.
var std = newTracker(defaultSeriesLimit)

// Start configures and starts the package-level tracker: counts made so far
// and from now on are exported as opts and the OTEL_* environment variables
// say. The returned shutdown exports what is left, as Tracker.Shutdown does;
// Start may be called again after it. Start returns ErrAlreadyStarted while
// the tracker runs, and an error wrapping ErrInvalidOption for an option or
// variable it cannot use. It is safe for concurrent use.
func Start(ctx context.Context, opts ...Option) (shutdown func(context.Context) error, err error) {
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	if err := std.start(ctx, cfg); err != nil {
		return nil, err
	}
	return std.Shutdown, nil
}

// Increment adds one to the counter name with the given attributes, on the
// package-level tracker. It is safe for concurrent use, never blocks and
// never panics, also before Start.
func Increment(name string, attrs ...attribute.KeyValue) {
	std.Increment(name, attrs...)
}

// Add adds n to the counter name with the given attributes, on the
// package-level tracker. A negative n is refused and counted. It is safe for
// concurrent use, never blocks and never panics, also before Start.
func Add(name string, n int64, attrs ...attribute.KeyValue) {
	std.Add(name, n, attrs...)
}

// Counter returns a handle bound to one series of the package-level tracker;
// see Tracker.Counter.
func Counter(name string, attrs ...attribute.KeyValue) *CounterHandle {
	return std.Counter(name, attrs...)
}

// Stats reports what the package-level tracker exported, held, dropped and
// refused.
func Stats() Statistics {
	return std.Stats()
}
