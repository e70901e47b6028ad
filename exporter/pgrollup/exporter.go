package pgrollup

import (
	"context"
	"errors"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/requestkey"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadata"
)

// ErrShutdown is returned by a push that arrives after the exporter began shutting down.
var ErrShutdown = errors.New("pgrollup: the exporter is shut down")

// maxPendingRows makes a flush start early when this many (series, minute) rows wait in memory.
const maxPendingRows = 500_000

// maxLoggedNames bounds the metric names remembered so that each is logged once.
const maxLoggedNames = 10_000

// rollupExporter aggregates pushed requests and writes them to Postgres in group commits. Its
// methods are safe for concurrent use; pushMetrics is called by several queue consumers at once.
type rollupExporter struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	now       func() time.Time
	parsers   sync.Pool

	pool   *pgxpool.Pool
	schema string // quoted
	host   component.Host
	// ready is set once the exporter has connected and migrated; pushes fail with ErrNotConnected
	// until then. connErr holds the last error of getting ready.
	ready   atomic.Bool
	readyCh chan struct{} // closed when ready is set
	connErr atomic.Pointer[error]
	// healthMu guards degraded, the status last reported through componentstatus.
	healthMu sync.Mutex
	degraded bool
	sqls     schema.Statements
	ids      *seriesCache // identity -> id; written by the flusher goroutine only, read by parsers
	// metricOf maps series ids to their metric, for the per-metric totals; used by the flusher
	// goroutine only.
	metricOf map[int64]string
	// stage is the flusher's buffer for the binary COPY of the staging rows.
	stage []byte
	// cumGroups is the flusher's scratch for the points of cumulative sums.
	cumGroups streamGroups
	// live holds the liveness records waiting for the next write (see liveness.go).
	live *liveness
	// flushLiveness is how often, at most, a flush records the collector's liveness: the constant
	// flushLiveness, or 0 in BenchmarkLivenessPerFlush, which measures the record in every flush.
	flushLiveness time.Duration
	// skipLiveness leaves the liveness records out of the flush: for BenchmarkLivenessPerFlush's
	// peer only.
	skipLiveness atomic.Bool
	// partitions holds the Unix days whose events partition is known to exist; used by the
	// flusher goroutine only.
	partitions map[int64]bool
	maxItems   int // flush at once when this many items wait (0: no limit)

	mu      sync.Mutex
	pending []*item
	rows    int
	// merged sums the known rows of the pending items by (series id, minute): the pushes merge
	// their own rows, in parallel with the flush, instead of the flusher merging them all. It is
	// stale (and the flush merges the items itself) once a pending item was withdrawn.
	merged      map[idKey]float64
	mergedStale bool
	lastMerged  int // len(merged) of the previous flush, to size the next map
	closed      bool
	kick        chan struct{} // a first item arrived
	full        chan struct{} // the pending batch should not wait any longer
	stop        chan struct{}
	wg          sync.WaitGroup

	logged     sync.Map // metric name -> struct{}
	loggedSize atomic.Int64
}

func newExporter(cfg *Config, set exporter.Settings) (*rollupExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	e := &rollupExporter{
		cfg:           cfg,
		logger:        set.Logger,
		telemetry:     tb,
		now:           time.Now,
		schema:        schema.Quote(cfg.Schema),
		ids:           newSeriesCache(),
		live:          newLiveness(cfg.Completeness, set.TelemetrySettings),
		flushLiveness: flushLiveness,
		metricOf:      make(map[int64]string),
		partitions:    make(map[int64]bool),
		readyCh:       make(chan struct{}),
		kick:          make(chan struct{}, 1),
		full:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
	}
	e.parsers.New = func() any {
		p := newParser(cfg.KeepResourceAttributes)
		p.cache = e.ids
		return p
	}
	if cfg.QueueConfig.HasValue() {
		e.maxItems = cfg.QueueConfig.Get().NumConsumers
	}
	e.sqls = schema.New(cfg.Schema)
	return e, nil
}

// start parses the DSN, makes one bounded attempt to connect and migrate, and starts the flusher;
// then the anomaly and retention loops (startLoops), at once if the attempt succeeded, else once
// the background connection loop succeeds (see connect.go). Only a DSN that does not parse fails it.
func (e *rollupExporter) start(ctx context.Context, host component.Host) error {
	pool, err := e.newPool()
	if err != nil {
		return err
	}
	e.pool, e.host = pool, host
	first, cancel := context.WithTimeout(ctx, firstConnectTimeout)
	err = e.prepare(first)
	cancel()
	e.wg.Add(1)
	go e.flusher()
	if err == nil {
		e.connected()
		e.startLoops()
		return nil
	}
	e.notConnected(err, 1)
	e.wg.Add(1)
	go e.connectLoop(err)
	return nil
}

// recordRetention stores the configured retention, which the series function reads.
func (e *rollupExporter) recordRetention(ctx context.Context, pool *pgxpool.Pool) error {
	b := &pgx.Batch{}
	for _, r := range resolutions {
		b.Queue(e.sqls.RecordRetention, r.Name, e.cfg.Retention.of(r))
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("recording retention settings: %w", err)
	}
	return nil
}

// shutdown writes what is still pending, stops the loops and closes the pool.
func (e *rollupExporter) shutdown(context.Context) error {
	e.mu.Lock()
	wasClosed := e.closed
	e.closed = true
	e.mu.Unlock()
	if !wasClosed {
		close(e.stop)
	}
	e.wg.Wait()
	if e.pool != nil {
		e.pool.Close()
		e.pool = nil
	}
	e.telemetry.Shutdown()
	return nil
}

// pushMetrics aggregates md, hands it to the next flush and returns once that flush has committed
// (or failed, or ctx is done). Refused points are counted and logged; they never fail the request.
// Before the exporter is connected it waits for it, at most 10s, then fails with ErrNotConnected
// (retryable). It fails with a permanent error when Postgres refuses the request's data (see
// refuse.go), and with the flush's retryable error otherwise.
func (e *rollupExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	if err := e.awaitReady(ctx); err != nil {
		return err
	}
	rms := md.ResourceMetrics()
	e.live.note(e.now(), func(yield func(pcommon.Resource)) {
		for i := range rms.Len() {
			yield(rms.At(i).Resource())
		}
	})
	p := e.parsers.Get().(*parser)
	it, ref := p.parse(md, e.now(), e.cfg.Retention.longest())
	rep := p.rep
	e.parsers.Put(p)
	e.reportRefusals(ctx, &ref)
	e.reportRepairs(ctx, &rep)
	if it == nil {
		return nil
	}
	key, err := requestkey.Metrics(md)
	if err != nil {
		return err
	}
	it.key = key
	e.telemetry.ExporterPgrollupPointsAccepted.Add(ctx, int64(it.points))
	return e.submit(ctx, it)
}

// submit hands a parsed item (metrics or logs) to the next flush and returns once that flush has
// committed it (or failed, or ctx is done).
func (e *rollupExporter) submit(ctx context.Context, it *item) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrShutdown
	}
	e.pending = append(e.pending, it)
	e.rows += len(it.rows) + len(it.known) + len(it.cum)
	if e.merged == nil {
		e.merged = make(map[idKey]float64, max(e.lastMerged, len(it.known)))
	}
	for _, r := range it.known {
		e.merged[idKey{r.series, r.minute}] += r.value
	}
	n, rows := len(e.pending), e.rows
	e.mu.Unlock()
	if n == 1 {
		signal(e.kick)
	}
	if (e.maxItems > 0 && n >= e.maxItems) || rows >= maxPendingRows {
		signal(e.full)
	}
	select {
	case <-it.done:
		return it.err
	case <-ctx.Done():
		e.mu.Lock()
		// If no flush took the item yet, withdraw it; otherwise the flush may still commit it, and
		// the retry that follows this error is recognised by the item's key.
		it.cancelled = true
		e.mergedStale = true
		e.mu.Unlock()
		return ctx.Err()
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// flusher waits for a first pending item, lets others join for up to flush_interval (or until the
// batch is full), then writes them all in one transaction and wakes their pushes. While it waits,
// it records the collector's liveness once connected and then every
// completeness::liveness_interval that nothing was flushed.
func (e *rollupExporter) flusher() {
	defer e.wg.Done()
	ticker := time.NewTicker(e.cfg.Completeness.LivenessInterval)
	defer ticker.Stop()
	ready := e.readyCh
	for {
		select {
		case <-e.kick:
		case <-ready:
			ready = nil
			e.idleLiveness()
			continue
		case <-ticker.C:
			e.idleLiveness()
			continue
		case <-e.stop:
			e.flushPending()
			return
		}
		timer := time.NewTimer(e.cfg.FlushInterval)
		select {
		case <-timer.C:
		case <-e.full:
		case <-e.stop:
		}
		timer.Stop()
		e.flushPending()
	}
}

// flushPending takes every pending item and writes it.
func (e *rollupExporter) flushPending() {
	e.mu.Lock()
	taken := e.pending
	e.pending = nil
	e.rows = 0
	merged := e.merged
	if e.mergedStale {
		merged = nil
	}
	e.merged = nil
	e.mergedStale = false
	if merged != nil {
		e.lastMerged = len(merged)
	}
	items := taken[:0:0]
	for _, it := range taken {
		if !it.cancelled {
			items = append(items, it)
		}
	}
	e.mu.Unlock()
	select { // a late kick belongs to the batch just taken
	case <-e.full:
	default:
	}
	if len(items) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(e.cfg.TimeoutConfig.Timeout, 30*time.Second))
	e.flushRound(ctx, items, merged)
	cancel()
	for _, it := range items {
		close(it.done)
	}
}

// idleLiveness writes the liveness records when nothing was flushed for liveness_interval; a
// failure is logged (the next flush or tick tries again).
func (e *rollupExporter) idleLiveness() {
	ctx, cancel := context.WithTimeout(context.Background(), max(e.cfg.TimeoutConfig.Timeout, 30*time.Second))
	defer cancel()
	if err := e.writeLiveness(ctx); err != nil {
		e.logger.Warn("recording the collector's liveness failed", zap.Error(err))
	}
}

// logOnce reports whether the log line keyed by key is to be written: the first time key is seen,
// while fewer than maxLoggedNames keys have been seen.
func (e *rollupExporter) logOnce(key string) bool {
	if _, seen := e.logged.Load(key); seen || e.loggedSize.Load() >= maxLoggedNames {
		return false
	}
	if _, seen := e.logged.LoadOrStore(key, struct{}{}); seen {
		return false
	}
	e.loggedSize.Add(1)
	return true
}

// reportRepairs counts the strings repaired while a request was parsed, by reason.
func (e *rollupExporter) reportRepairs(ctx context.Context, rep *repairs) {
	for r, n := range rep {
		if n > 0 {
			e.telemetry.ExporterPgrollupValuesRepaired.Add(ctx, n,
				metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", repairNames[r]))))
		}
	}
}

// reportRefusals counts refused points by reason and logs each metric name once.
func (e *rollupExporter) reportRefusals(ctx context.Context, ref *refusals) {
	for r := range numReasons {
		if ref.n[r] == 0 {
			continue
		}
		e.telemetry.ExporterPgrollupPointsRefused.Add(ctx, ref.n[r],
			metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", reasonNames[r]))))
		for _, name := range ref.names[r] {
			name = displayName(name)
			if !e.logOnce(name) {
				continue
			}
			e.logger.Warn("refusing data points (logged once per metric name)",
				zap.String("metric", name), zap.String("reason", reasonNames[r]), zap.Error(reasonErrs[r]))
		}
	}
}
