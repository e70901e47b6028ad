package pgrollup

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// A data error never fails other data. Postgres refuses a flush transaction as a whole; when the
// cause is data (SQLSTATE class 22 data_exception, class 23 integrity_constraint_violation other
// than the unique violations that writeTx retries, class 54 program_limit_exceeded), flushRound
// finds the requests responsible by bisecting the round: each half is flushed in its own
// transaction, down to single requests. A request that fails alone with a data error is refused
// with a permanent error (consumererror.NewPermanent), so that exporterhelper does not retry it and
// the persistent queue lets it go; its key is not recorded, since its transaction rolled back. The
// other requests of the round commit in the same round, each under its key, so a replay of any of
// them still counts once. Every other error (a lost connection, a server shutting down, resources,
// a deadlock or serialization failure that outlived writeTx's attempts) fails the round's pushes
// with a retryable error, as before.
//
// Sanitising (sanitize.go) leaves no known input that causes a data error; bisection is the net
// for what it does not foresee (a constraint or trigger an operator added, a limit of another
// Postgres version). A round with k bad requests of n costs about 2·k·log2(n) extra transactions.

// The reasons a request is refused, as the `reason` attribute of
// exporter_pgrollup_requests_refused.
const (
	refusedData      = "data_exception"
	refusedIntegrity = "integrity_constraint_violation"
	refusedLimit     = "program_limit_exceeded"
)

// dataErrorReason returns the refusal reason of an error caused by the data written, and whether
// err is one.
func dataErrorReason(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return "", false
	}
	switch code := pgErr.Code; {
	case pgerrcode.IsDataException(code):
		return refusedData, true
	case pgerrcode.IsIntegrityConstraintViolation(code) && code != pgerrcode.UniqueViolation:
		return refusedIntegrity, true
	case pgerrcode.IsProgramLimitExceeded(code):
		return refusedLimit, true
	}
	return "", false
}

// flushRound writes the items of one round and sets each item's err: nil when its counts are
// committed, a permanent error when Postgres refused its data, or the retryable error of the
// flush. merged is as for flush. It is called by the flusher goroutine only.
func (e *rollupExporter) flushRound(ctx context.Context, items []*item, merged map[idKey]float64) {
	err := e.flush(ctx, items, merged)
	if err == nil {
		for _, it := range items {
			it.err = nil
		}
		e.reportHealth(nil)
		return
	}
	reason, isData := dataErrorReason(err)
	switch {
	case !isData:
		e.reportHealth(err)
		e.logger.Warn("writing rollups failed; the pushes will be retried", zap.Int("requests", len(items)), zap.Error(err))
		for _, it := range items {
			it.err = err
		}
	case len(items) == 1:
		e.refuse(ctx, items[0], reason, err)
	default:
		half := len(items) / 2
		e.flushRound(ctx, items[:half], nil)
		e.flushRound(ctx, items[half:], nil)
	}
}

// refuse fails the push of it with a permanent error, counts it and logs it (once per SQLSTATE).
func (e *rollupExporter) refuse(ctx context.Context, it *item, reason string, err error) {
	it.err = consumererror.NewPermanent(fmt.Errorf("pgrollup: postgres refused the data of this request; it is dropped: %w", err))
	e.telemetry.ExporterPgrollupRequestsRefused.Add(ctx, 1,
		metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", reason))))
	var pgErr *pgconn.PgError
	errors.As(err, &pgErr)
	if e.logOnce("refused\x00" + pgErr.Code) {
		e.logger.Warn("refusing a request whose data Postgres refuses; the other requests of its flush are written "+
			"(logged once per SQLSTATE; exporter_pgrollup_requests_refused counts them)",
			zap.String("reason", reason), zap.String("sqlstate", pgErr.Code), zap.Error(err))
	}
}
