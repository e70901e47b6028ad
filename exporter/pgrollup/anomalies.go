package pgrollup

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// anomalyRound refreshes the anomaly baselines and judges the newly complete minutes (migration 007,
// the README's "Anomalies"); startLoops runs it at once and then every anomalies::refresh_interval
// until shutdown.
func (e *rollupExporter) anomalyRound() {
	ctx, cancel := e.stopContext(e.cfg.Anomalies.RefreshInterval)
	defer cancel()
	if _, err := e.refreshAnomalies(ctx); err != nil && ctx.Err() == nil {
		e.logger.Warn("refreshing the anomaly baselines or judging the latest minutes failed; anomalies() judges "+
			"what is not judged yet itself, and the next round tries again",
			zap.Error(err))
	}
}

// refreshAnomalies records anomalies::time_zone and recomputes every metric's baseline
// (refresh_anomaly_baselines, a no-op until a new hour has completed) in one transaction, then judges
// the newly complete minutes (judge_anomalies) in another. Only one collector per schema runs it at a
// time (a try-lock: the others skip this round and return 0). It returns the number of metrics with a
// baseline.
func (e *rollupExporter) refreshAnomalies(ctx context.Context) (metrics int, err error) {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("anomaly baselines: %w", err)
	}
	defer conn.Release()
	lockKey := "pgrollup-anomalies:" + e.cfg.Schema
	var got bool
	if err := conn.QueryRow(ctx, e.sqls.TryLock, lockKey).Scan(&got); err != nil {
		return 0, fmt.Errorf("anomaly baselines: taking the advisory lock: %w", err)
	}
	if !got {
		return 0, nil
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), e.sqls.Unlock, lockKey)
	}()
	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("anomaly baselines: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, e.sqls.AnomalyTimeZone, e.cfg.Anomalies.TimeZone); err != nil {
		return 0, fmt.Errorf("anomaly baselines: recording the time zone: %w", err)
	}
	if err := tx.QueryRow(ctx, e.sqls.RefreshAnomalies).Scan(&metrics); err != nil {
		return 0, fmt.Errorf("anomaly baselines: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("anomaly baselines: %w", err)
	}
	var kept int
	if err := conn.QueryRow(ctx, e.sqls.JudgeAnomalies).Scan(&kept); err != nil {
		return metrics, fmt.Errorf("judging the latest minutes: %w", err)
	}
	e.logger.Debug("refreshed the anomaly baselines and judged the latest minutes", zap.Int("metrics", metrics),
		zap.Int("anomalous_minutes", kept), zap.Duration("took", time.Since(start)))
	return metrics, nil
}
