package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trackhq/track/internal/pgerr"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// anomaliesNow reads what is anomalous now from schema.anomalies_now (migration 007 of the pgrollup
// exporter: the metrics whose latest complete minute is anomalous, with the start of the run it
// ends and the kind of baseline), optionally only for one metric. A NULL in a numeric column reads
// as NaN.
func anomaliesNow(ctx context.Context, pool *pgxpool.Pool, schema, metric string) ([]Anomaly, error) {
	sql := `SELECT time, metric, value, coalesce(expected, 'NaN'), coalesce(lower, 'NaN'), coalesce(upper, 'NaN'),
	               coalesce(score, 'NaN'), kind, coalesce(started, time), coalesce(baseline, '')
	          FROM ` + schema + `.anomalies_now
	         WHERE $1::text IS NULL OR metric = $1
	         ORDER BY metric, kind, time`
	var m *string
	if metric != "" {
		m = &metric
	}
	rows, err := pool.Query(ctx, sql, m)
	if err != nil {
		return nil, fmt.Errorf("querying %s.anomalies_now: %w", schema, err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Anomaly, error) {
		var a Anomaly
		err := r.Scan(&a.Time, &a.Metric, &a.Value, &a.Expected, &a.Lower, &a.Upper, &a.Score, &a.Kind, &a.Started, &a.Baseline)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s.anomalies_now: %w", schema, err)
	}
	return got, nil
}

// errUnknownMetric is what checkMetric returns for a metric never counted.
var errUnknownMetric = errors.New("no such metric")

// checkMetric asks schema.anomalies about metric over the last 2 minutes, so that a typo in
// -metric is an error (with the database's suggestion) instead of a watcher that never posts.
func checkMetric(ctx context.Context, pool *pgxpool.Pool, schema, metric string) error {
	var n int
	err := pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".anomalies(now() - interval '2 minutes', now(), interval '1 minute', $1)", metric).Scan(&n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UndefinedObject {
		return fmt.Errorf("%w: %s", errUnknownMetric, pgerr.Text(pgErr))
	}
	if err != nil {
		return fmt.Errorf("checking -metric %q: %w", metric, err)
	}
	return nil
}
