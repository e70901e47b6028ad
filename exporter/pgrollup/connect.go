package pgrollup

import (
	"context"
	"errors"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
)

// Starting without Postgres. Start parses the DSN (a DSN that does not parse fails Start: it can
// never work) and makes one bounded attempt to connect and migrate. If Postgres does not answer,
// or refuses (a wrong password, a missing database, a schema that migrate_on_start: false finds
// outdated), Start still succeeds: the collector accepts OTLP into its sending queue, and the
// exporter keeps trying in the background with exponential backoff (connectBackoffMin to
// connectBackoffMax). Until the first attempt succeeds a push waits (at most notReadyWait) and then
// fails with ErrNotConnected, a retryable error, so the (persistent) queue keeps the data and
// exporterhelper retries it; the component reports a recoverable error through componentstatus
// (the health check, with component status, then answers unhealthy). Once connected and migrated it reports OK, and the
// retried pushes are written exactly once as usual. A flush that later fails for a reason other
// than its data (a lost connection) reports the recoverable error again, and the next committed
// flush reports OK.
//
// An authentication failure does not fail Start either: in compose or Kubernetes the writer role
// is often created by a job that runs after the database is up, and a collector that exited would
// restart in a loop without its queue being served; it is logged at error level.

// ErrNotConnected is returned (wrapped with the last connection error) by pushes that arrive
// before the exporter has connected to Postgres and applied or checked its migrations. It is
// retryable: exporterhelper retries the request, and a persistent queue keeps it.
var ErrNotConnected = errors.New("pgrollup: postgres is not reachable yet; the request is retried")

// ErrSchemaOutdated is wrapped in the error of a push when migrate_on_start is false and the
// schema lacks migrations this exporter needs (run trackctl migrate as the schema owner).
var ErrSchemaOutdated = schema.ErrOutdated

const (
	// firstConnectTimeout bounds the attempt Start makes before it lets the background take over.
	firstConnectTimeout = 5 * time.Second
	// connectTimeout bounds each background attempt (connect, migrate, partitions).
	connectTimeout = 30 * time.Second
	// dialTimeout is the connect timeout of a pool connection when the DSN sets none.
	dialTimeout = 10 * time.Second
	// notReadyWait is how long a push waits for the exporter to get ready before it fails.
	notReadyWait = 10 * time.Second
	// connectBackoffMin and connectBackoffMax bound the wait between background attempts. An attempt
	// on a Postgres that is down costs a refused connection; a short maximum means the queue starts
	// draining within seconds of Postgres coming back.
	connectBackoffMin = 500 * time.Millisecond
	connectBackoffMax = 5 * time.Second
)

// newPool parses the DSN and returns a pool that has not connected yet.
func (e *rollupExporter) newPool() (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(string(e.cfg.DSN))
	if err != nil {
		return nil, fmt.Errorf("parsing dsn: %w", err)
	}
	pcfg.MaxConns = e.cfg.MaxConns
	if pcfg.ConnConfig.ConnectTimeout <= 0 {
		pcfg.ConnConfig.ConnectTimeout = dialTimeout
	}
	pcfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, e.sqls.CreateStage)
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("creating the connection pool: %w", err)
	}
	return pool, nil
}

// prepare connects, migrates (or checks the schema), records the retention settings and creates
// the next days' event partitions. It is safe to repeat.
func (e *rollupExporter) prepare(ctx context.Context) error {
	var err error
	if e.cfg.MigrateOnStart {
		_, err = schema.Migrate(ctx, e.pool, e.cfg.Schema)
	} else {
		err = schema.Check(ctx, e.pool, e.cfg.Schema)
	}
	if err == nil {
		err = e.recordRetention(ctx, e.pool)
	}
	if err == nil {
		err = e.ensurePartitionsAhead(ctx)
	}
	return err
}

// connectLoop tries prepare with backoff until it succeeds or the exporter stops; then it marks
// the exporter ready, reports OK and starts the anomaly and retention loops (startLoops). first is
// the error of the attempt Start made.
func (e *rollupExporter) connectLoop(first error) {
	defer e.wg.Done()
	err := first
	wait := connectBackoffMin
	for attempt := 2; err != nil; attempt++ {
		select {
		case <-e.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, connectBackoffMax)
		ctx, cancel := e.stopContext(connectTimeout)
		err = e.prepare(ctx)
		cancel()
		if err != nil {
			e.notConnected(err, attempt)
		}
	}
	e.connected()
	e.startLoops()
}

// stopContext returns a context that ends after timeout (none when timeout is 0) or when the
// exporter stops.
func (e *rollupExporter) stopContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	var ctx context.Context
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// notConnected records and reports a failed attempt to get ready.
func (e *rollupExporter) notConnected(err error, attempt int) {
	e.connErr.Store(&err)
	e.reportHealth(err)
	if attempt > 3 && attempt%12 != 0 { // the first attempts, then about once a minute
		return
	}
	log := e.logger.Warn
	if misconfigured(err) {
		log = e.logger.Error
	}
	log("postgres is not ready for the exporter; pushes are retried until it is (the collector keeps accepting data)",
		zap.Int("attempt", attempt), zap.Error(err))
}

// connected marks the exporter ready for pushes, wakes the pushes waiting for it and reports OK.
// It is called once.
func (e *rollupExporter) connected() {
	e.ready.Store(true)
	close(e.readyCh)
	e.reportHealth(nil)
	e.logger.Info("connected to postgres; the schema is ready")
}

// misconfigured reports whether err is one that only a change of configuration, credentials or
// schema fixes (it is logged at error level, and still retried).
func misconfigured(err error) bool {
	if errors.Is(err, schema.ErrOutdated) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgerrcode.IsInvalidAuthorizationSpecification(pgErr.Code) || pgerrcode.IsInvalidCatalogName(pgErr.Code) ||
		pgErr.Code == pgerrcode.InsufficientPrivilege
}

// awaitReady returns nil once the exporter is ready. A push that arrives before waits for it, for
// at most notReadyWait and while ctx lasts, so that it goes on at once when Postgres comes back
// rather than after exporterhelper's next backoff; then it fails with ErrNotConnected.
func (e *rollupExporter) awaitReady(ctx context.Context) error {
	if e.ready.Load() {
		return nil
	}
	t := time.NewTimer(notReadyWait)
	defer t.Stop()
	select {
	case <-e.readyCh:
		return nil
	case <-e.stop:
		return ErrShutdown
	case <-ctx.Done():
	case <-t.C:
	}
	return e.notReady()
}

// notReady returns the error of a push that arrives before the exporter is ready.
func (e *rollupExporter) notReady() error {
	if last := e.connErr.Load(); last != nil {
		return fmt.Errorf("%w: %w", ErrNotConnected, *last)
	}
	return ErrNotConnected
}

// reportHealth reports a recoverable error (err != nil) or OK through componentstatus when the
// exporter's health changes. Repeating the same status is avoided on purpose: the health check
// extension judges a recoverable error by the time it was first reported (recovery_duration).
func (e *rollupExporter) reportHealth(err error) {
	e.healthMu.Lock()
	defer e.healthMu.Unlock()
	degraded := err != nil
	if degraded == e.degraded || e.host == nil {
		e.degraded = degraded
		return
	}
	e.degraded = degraded
	if degraded {
		componentstatus.ReportStatus(e.host, componentstatus.NewRecoverableErrorEvent(err))
	} else {
		componentstatus.ReportStatus(e.host, componentstatus.NewEvent(componentstatus.StatusOK))
	}
}
