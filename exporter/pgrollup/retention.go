package pgrollup

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// deleteBatch is how many rows one retention DELETE removes. Small batches keep each transaction
// short: writers never wait long on the rows being deleted (they are old rows nobody writes), and
// no long lock is taken.
const deleteBatch = 5000

// retentionLoop removes expired rows every retention::interval until shutdown.
func (e *rollupExporter) retentionLoop() {
	t := time.NewTicker(e.cfg.Retention.Interval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := e.runRetention(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("removing expired rollup rows failed; will try again", zap.Error(err))
		}
		cancel()
	}
}

// runRetention removes, in batches of deleteBatch rows, the rollup rows whose bucket ended before
// now minus the resolution's retention, and the idempotency keys older than dedup_window, then
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
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lockKey).Scan(&got); err != nil {
		return fmt.Errorf("retention: taking the advisory lock: %w", err)
	}
	if !got {
		return nil
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", lockKey)
	}()
	now := e.now()
	for _, r := range resolutions {
		// A bucket starting at t ends at t+width; it expires once t+width <= now-retention.
		cutoff := now.Add(-e.cfg.Retention.get(r) - r.width)
		n, err := e.deleteOlder(ctx, r.table, "time", cutoff)
		if err == nil {
			_, err = e.deleteOlder(ctx, r.totals, "time", cutoff)
		}
		if n > 0 {
			e.telemetry.ExporterPgrollupRetentionDeleted.Add(ctx, n,
				metric.WithAttributeSet(attribute.NewSet(attribute.String("resolution", r.name))))
		}
		if err != nil {
			return fmt.Errorf("retention of %s rows: %w", r.name, err)
		}
	}
	n, err := e.deleteOlder(ctx, "item_keys", "created_at", now.Add(-e.cfg.DedupWindow))
	if n > 0 {
		e.telemetry.ExporterPgrollupKeysExpired.Add(ctx, n)
	}
	if err != nil {
		return fmt.Errorf("expiring idempotency keys: %w", err)
	}
	if err := e.expireStreams(ctx, now); err != nil {
		return err
	}
	// Last: a partition drop that times out on its lock must not hold back the rest.
	return e.eventRetention(ctx)
}

// deleteOlder deletes the rows of table whose column is at or before cutoff, deleteBatch rows per
// statement (each its own short transaction), and returns how many it deleted.
func (e *rollupExporter) deleteOlder(ctx context.Context, table, column string, cutoff time.Time) (int64, error) {
	q := fmt.Sprintf(`DELETE FROM %[1]s.%[2]s WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM %[1]s.%[2]s WHERE %[3]s <= $1 LIMIT %[4]d))`, e.schema, table, column, deleteBatch)
	var total int64
	for {
		tag, err := e.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < deleteBatch {
			return total, nil
		}
	}
}
