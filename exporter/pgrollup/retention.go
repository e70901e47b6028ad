package pgrollup

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
)

// retentionRound removes expired rows; startLoops runs it every retention::interval (first one
// interval after the start) until shutdown.
func (e *rollupExporter) retentionRound() {
	ctx, cancel := e.stopContext(0)
	defer cancel()
	if err := e.runRetention(ctx); err != nil && ctx.Err() == nil {
		e.logger.Warn("removing expired rollup rows failed; will try again", zap.Error(err))
	}
}

// startLoops starts, each in its own goroutine counted in e.wg, the anomaly loop (a round at once)
// and the retention loop (a first round one interval later). It is called once the exporter is
// ready.
func (e *rollupExporter) startLoops() {
	e.wg.Add(2)
	go e.every(e.cfg.Anomalies.RefreshInterval, true, e.anomalyRound)
	go e.every(e.cfg.Retention.Interval, false, e.retentionRound)
}

// every runs round every interval until the exporter stops (a round under way finishes, its
// context cancelled), the first one at once when atOnce is true; then it marks e.wg done.
func (e *rollupExporter) every(interval time.Duration, atOnce bool, round func()) {
	defer e.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for run := atOnce; ; run = true {
		if run {
			round()
		}
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
	}
}

// runRetention removes, in batches of schema.DeleteBatch rows, the rollup rows whose bucket ended before
// now minus the resolution's retention, the idempotency keys older than dedup_window, the
// collectors' spans older than the longest retention and the sources not seen for retention::minute,
// then
// drops the expired daily partitions of the events table and creates the next days' (see
// eventRetention). Only one collector per schema runs it at a time (a try-lock: the others skip
// this round).
func (e *rollupExporter) runRetention(ctx context.Context) error {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	defer conn.Release()
	lockKey := "pgrollup-retention:" + e.cfg.Schema
	var got bool
	if err := conn.QueryRow(ctx, e.sqls.TryLock, lockKey).Scan(&got); err != nil {
		return fmt.Errorf("retention: taking the advisory lock: %w", err)
	}
	if !got {
		return nil
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), e.sqls.Unlock, lockKey)
	}()
	now := e.now()
	for i, r := range resolutions {
		cutoff := r.Cutoff(now, e.cfg.Retention.of(r))
		n, err := e.deleteOlder(ctx, e.sqls.ExpireRollup[i], cutoff)
		if err == nil {
			_, err = e.deleteOlder(ctx, e.sqls.ExpireTotals[i], cutoff)
		}
		if n > 0 {
			e.telemetry.ExporterPgrollupRetentionDeleted.Add(ctx, n,
				metric.WithAttributeSet(attribute.NewSet(attribute.String("resolution", r.Name))))
		}
		if err != nil {
			return fmt.Errorf("retention of %s rows: %w", r.Name, err)
		}
	}
	n, err := e.deleteOlder(ctx, e.sqls.ExpireKeys, now.Add(-e.cfg.DedupWindow))
	if n > 0 {
		e.telemetry.ExporterPgrollupKeysExpired.Add(ctx, n)
	}
	if err != nil {
		return fmt.Errorf("expiring idempotency keys: %w", err)
	}
	if err := e.expireStreams(ctx, now); err != nil {
		return err
	}
	// The collectors' spans of times no rollup holds any more, and the sources not seen for as long
	// as minutes are kept (a sender inventing instance ids adds rows; this bounds how long they stay).
	if _, err := e.deleteOlder(ctx, e.sqls.ExpireSpans, now.Add(-e.cfg.Retention.longest())); err != nil {
		return fmt.Errorf("expiring the collectors' spans: %w", err)
	}
	if _, err := e.deleteOlder(ctx, e.sqls.ExpireSources, now.Add(-e.cfg.Retention.of(resolutions[0]))); err != nil {
		return fmt.Errorf("expiring sources: %w", err)
	}
	// Last: a partition drop that times out on its lock must not hold back the rest.
	return e.eventRetention(ctx)
}

// deleteOlder runs the batched DELETE q (one of the Expire statements) with cutoff until a batch
// deletes fewer than schema.DeleteBatch rows (each statement its own short transaction), and
// returns how many rows it deleted.
func (e *rollupExporter) deleteOlder(ctx context.Context, q string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := e.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < schema.DeleteBatch {
			return total, nil
		}
	}
}
