package track

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// shutdownRetryEvery paces the attempts to drain a backlog at shutdown.
const shutdownRetryEvery = 100 * time.Millisecond

// flowStats counts one signal's items (data points or events) through a
// backlog.
type flowStats struct {
	exported atomic.Uint64
	held     atomic.Int64
	dropped  atomic.Uint64
}

// backlog keeps every export that failed and sends them again, oldest first
// and one request each, before anything newer. Each held export keeps its own
// timestamps: merging them would put a long outage's counts into one
// interval, and re-sending the exact same request lets a collector that did
// receive it recognise the duplicate. It is safe for concurrent use.
type backlog[T any] struct {
	send     func(context.Context, T) error
	limit    int
	what     string // "points" or "events", for errors
	flow     *flowStats
	failures *atomic.Uint64
	report   func(error)
	// heartbeats makes push send an empty batch (no items) when nothing is
	// held, as a sign of life; such a batch is never held, retried or
	// counted in flow. Without it, an empty batch only drains the queue.
	heartbeats bool

	mu    sync.Mutex
	queue []heldExport[T]
}

type heldExport[T any] struct {
	batch T
	items int
}

// push queues batch (which must not be modified afterwards) and sends the
// queue. A failure is reported to the error handler and the batch stays
// queued; when the queue is over its limit the oldest batches are dropped.
// An empty batch (items == 0) is not queued: with heartbeats and nothing
// held, it is sent once, and a failure is counted and reported but not
// retried (the next interval sends another; a held queue shows the process
// alive when it drains).
func (b *backlog[T]) push(ctx context.Context, batch T, items int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if items > 0 {
		b.queue = append(b.queue, heldExport[T]{batch: batch, items: items})
		b.flow.held.Add(int64(items))
	} else if b.heartbeats && len(b.queue) == 0 {
		if err := b.send(ctx, batch); err != nil {
			b.failures.Add(1)
			b.report(fmt.Errorf("sending a heartbeat (nothing counted in the interval): %w", err))
		}
		return
	}
	if err := b.drain(ctx); err != nil {
		for len(b.queue) > b.limit {
			b.dropOldest()
		}
		b.report(err)
	}
}

// drain sends held exports in order until one fails. Called with b.mu held.
func (b *backlog[T]) drain(ctx context.Context) error {
	for len(b.queue) > 0 {
		h := b.queue[0]
		if err := b.send(ctx, h.batch); err != nil {
			b.failures.Add(1)
			return fmt.Errorf("exporting %d %s, %d exports held: %w", h.items, b.what, len(b.queue), err)
		}
		b.flow.exported.Add(uint64(h.items))
		b.flow.held.Add(-int64(h.items))
		b.queue[0] = heldExport[T]{}
		b.queue = b.queue[1:]
	}
	return nil
}

func (b *backlog[T]) dropOldest() {
	h := b.queue[0]
	b.flow.dropped.Add(uint64(h.items))
	b.flow.held.Add(-int64(h.items))
	b.queue[0] = heldExport[T]{}
	b.queue = b.queue[1:]
}

// flush sends the backlog once.
func (b *backlog[T]) flush(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drain(ctx)
}

// close keeps sending the backlog until it is empty or ctx ends; what is
// still held then is dropped, and the error wraps ErrBacklogDropped.
func (b *backlog[T]) close(ctx context.Context) error {
	for {
		b.mu.Lock()
		err := b.drain(ctx)
		if err == nil {
			b.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			lost := b.flow.held.Load()
			for len(b.queue) > 0 {
				b.dropOldest()
			}
			b.mu.Unlock()
			return fmt.Errorf("%w: %d %s undelivered: %w", ErrBacklogDropped, lost, b.what, err)
		}
		b.mu.Unlock()
		timer := time.NewTimer(shutdownRetryEvery)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}
}

// shutdownAfter closes b, then shuts the wrapped exporter down even if ctx
// has ended, so its connections are always released.
func shutdownAfter[T any](ctx context.Context, b *backlog[T], next func(context.Context) error) error {
	err := b.close(ctx)
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	return errors.Join(err, next(ctx))
}
