package track

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/trackhq/track/internal/conventions"
)

var (
	// ErrInvalidName is wrapped by the errors reported for a counter or event
	// name that is empty, longer than 255 bytes or outside the OpenTelemetry
	// instrument-name syntax (the rule the collector's sampler applies too).
	ErrInvalidName = conventions.ErrInvalidName
	// ErrNegative is wrapped by the errors reported for a negative Add:
	// counters only go up.
	ErrNegative = errors.New("track: negative value")
	// ErrTooManyNames is wrapped by the errors reported when a tracker
	// already counts its maximum number of distinct names (10000).
	ErrTooManyNames = errors.New("track: too many counter names")
	// ErrAlreadyStarted is returned by Start when the package-level tracker
	// is already running.
	ErrAlreadyStarted = errors.New("track: already started")
	// ErrInvalidOption is wrapped by the errors New and Start return for an
	// option or environment variable they cannot use.
	ErrInvalidOption = errors.New("track: invalid option")
	// ErrSeriesOverflow is wrapped by the errors reported to the error
	// handler when a name first reaches its limit of active attribute sets
	// (see WithSeriesLimit) and further sets start to fold into its
	// otel.metric.overflow series.
	ErrSeriesOverflow = errors.New("track: series limit reached")
	// ErrBacklogDropped is wrapped by the error Shutdown returns when points
	// could not be delivered before its context ended.
	ErrBacklogDropped = errors.New("track: backlog dropped")
)

// reportEvery rate-limits the reports of refused calls and of overflows.
const reportEvery = time.Second

// rateLimit allows one report per reportEvery and counts those it holds back.
type rateLimit struct {
	next       atomic.Int64 // unix nanoseconds of the next report allowed
	suppressed atomic.Uint64
}

// allow reports whether a report may go out now and, if so, how many were
// held back since the last one.
func (l *rateLimit) allow() (ok bool, missed uint64) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(reportEvery)) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// refusals counts refused calls and reports them to the error handler at
// most once per reportEvery, from a goroutine of its own so that a slow
// handler never blocks a caller.
type refusals struct {
	count   atomic.Uint64
	limit   rateLimit
	handler atomic.Pointer[func(error)]
}

func (r *refusals) setHandler(h func(error)) { r.handler.Store(&h) }

// report hands err to the error handler on a goroutine of its own.
func (r *refusals) report(err error) {
	if h := r.handler.Load(); h != nil {
		go (*h)(err)
	}
}

func (r *refusals) refuse(err error) {
	r.count.Add(1)
	ok, missed := r.limit.allow()
	if !ok {
		return
	}
	if missed > 0 {
		err = fmt.Errorf("%w (and %d more refusals since the last report)", err, missed)
	}
	r.report(err)
}
