package pgrollup

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/identity"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// resolutions are the rollup resolutions (see schema.Resolutions).
var resolutions = schema.Resolutions

// rollupRow is one row of a rollup table: bucket start in Unix seconds.
type rollupRow struct {
	series int64
	start  int64
	value  float64
}

func cmpRow(a, b rollupRow) int {
	if c := cmp.Compare(a.series, b.series); c != 0 {
		return c
	}
	return cmp.Compare(a.start, b.start)
}

// maxTxAttempts bounds the immediate retries of a flush transaction after a deadlock, a
// serialization failure, a key conflict or a connection that was dead before anything was sent.
const maxTxAttempts = 4

// flush writes items in one transaction, skipping those whose key is already committed. merged
// holds the known rows of the items summed at submit time, or is nil to have flush sum them. It
// is called by the flusher goroutine only.
func (e *rollupExporter) flush(ctx context.Context, items []*item, merged map[idKey]float64) error {
	start := time.Now()
	if err := e.resolveSeries(ctx, items, merged); err != nil {
		return err
	}
	if merged == nil {
		merged = mergeItems(items)
	}
	if err := e.resolveMetrics(ctx, merged); err != nil {
		return err
	}
	if err := e.resolveMetrics(ctx, e.cumulativeMetricsMissing(items)); err != nil {
		return err
	}
	if err := e.ensurePartitions(ctx, items); err != nil {
		return err
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = e.writeTx(ctx, items, merged)
		if err == nil || attempt == maxTxAttempts || !retryable(err) {
			break
		}
		e.telemetry.ExporterPgrollupFlushRetries.Add(ctx, 1)
	}
	if err != nil {
		return fmt.Errorf("writing rollups: %w", err)
	}
	e.telemetry.ExporterPgrollupFlushes.Add(ctx, 1)
	e.telemetry.ExporterPgrollupFlushDuration.Record(ctx, time.Since(start).Seconds())
	return nil
}

// retryable reports whether a failed flush transaction is tried again at once: a deadlock, a
// serialization failure, a key conflict with another collector, or a connection that was dead
// before anything was sent.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgerrcode.DeadlockDetected, pgerrcode.SerializationFailure, pgerrcode.UniqueViolation:
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err)
}

// idKey is one (series id, minute) bucket.
type idKey struct {
	series int64
	minute int64
}

// mergeItems sums the rows of items by (series id, minute). The items' rows must have been
// resolved to ids (see resolveSeries).
func mergeItems(items []*item) map[idKey]float64 {
	n := 0
	for _, it := range items {
		n += len(it.known)
	}
	merged := make(map[idKey]float64, min(n, maxPendingRows))
	for _, it := range items {
		for _, r := range it.known {
			merged[idKey{r.series, r.minute}] += r.value
		}
	}
	return merged
}

// resolveSeries makes sure every series of the items' rows (those not yet known at parse time) has
// an id in e.ids, inserting new series (sorted by key, ON CONFLICT DO NOTHING, so concurrent
// collectors neither fail nor duplicate) and reading their ids back; then it moves those rows into
// the known rows of the items, adding them to merged unless it is nil. It runs outside the flush
// transaction: a series row without counts is harmless.
func (e *rollupExporter) resolveSeries(ctx context.Context, items []*item, merged map[idKey]float64) error {
	if len(e.ids.ids) > 2_000_000 || len(e.ids.byLookup) > 4_000_000 {
		// Bound the cache; ids are re-read on demand. Ids that parsers already read stay valid.
		e.ids.mu.Lock()
		clear(e.ids.ids)
		clear(e.ids.byLookup)
		e.ids.mu.Unlock()
		clear(e.metricOf)
	}
	if err := e.addSeries(ctx, items); err != nil {
		return err
	}
	e.ids.mu.Lock()
	for _, it := range items {
		for identity, lookup := range it.lookups {
			e.ids.byLookup[lookup] = e.ids.ids[identity]
		}
		it.lookups = nil
	}
	e.ids.mu.Unlock()
	for _, it := range items {
		for k, v := range it.rows {
			r := knownRow{e.ids.ids[k.series], k.minute, v}
			it.known = append(it.known, r)
			if merged != nil {
				merged[idKey{r.series, r.minute}] += v
			}
		}
		it.rows = nil
	}
	e.resolveCumulativeSeries(items)
	return nil
}

// addSeries stores the series of the items' rows that e.ids lacks and caches their ids.
func (e *rollupExporter) addSeries(ctx context.Context, items []*item) error {
	missing := e.missingSeries(items)
	if len(missing) == 0 {
		return nil
	}
	found, created, err := e.storeSeries(ctx, missing)
	if err != nil {
		return err
	}
	e.ids.mu.Lock()
	maps.Copy(e.ids.ids, found)
	e.ids.mu.Unlock()
	for ident, id := range found {
		metric, _, _ := identity.Split(ident)
		e.metricOf[id] = metric
	}
	// Only the series this insert added: the others existed (another collector's, or this one's
	// before its cache was cleared) and were only looked up.
	if created > 0 {
		e.telemetry.ExporterPgrollupSeriesCreated.Add(ctx, created)
	}
	return nil
}

// newSeries is a series missing from the cache: its key and canonical identity.
type newSeries struct {
	key [16]byte
	id  string
}

// missingSeries returns the series of the items' rows (and cumulative points) that the cache
// lacks, each once, sorted by key.
func (e *rollupExporter) missingSeries(items []*item) []newSeries {
	var missing []newSeries
	seen := make(map[string]bool)
	for _, it := range items {
		for k := range it.rows {
			if _, ok := e.ids.ids[k.series]; ok || seen[k.series] {
				continue
			}
			seen[k.series] = true
			missing = append(missing, newSeries{identity.Key(k.series), k.series})
		}
		cumulativeIdentities(it, func(ident string) {
			if _, ok := e.ids.ids[ident]; !ok && !seen[ident] {
				seen[ident] = true
				missing = append(missing, newSeries{identity.Key(ident), ident})
			}
		})
	}
	slices.SortFunc(missing, func(a, b newSeries) int { return slices.Compare(a.key[:], b.key[:]) })
	return missing
}

// storeSeries inserts the missing series (in key order, ON CONFLICT DO NOTHING, so concurrent
// collectors neither fail nor duplicate), reads back the ids of all of them by identity, and
// returns how many rows the insert added.
func (e *rollupExporter) storeSeries(ctx context.Context, missing []newSeries) (map[string]int64, int64, error) {
	byKey := make(map[[16]byte]string, len(missing))
	keys := make([][16]byte, len(missing))
	metrics := make([]string, len(missing))
	services := make([]string, len(missing))
	attrs := make([]string, len(missing))
	for i, m := range missing {
		keys[i] = m.key
		metrics[i], services[i], attrs[i] = identity.Split(m.id)
		byKey[m.key] = m.id
	}
	tag, err := e.pool.Exec(ctx, e.sqls.InsertSeries, keys, metrics, services, attrs)
	if err != nil {
		return nil, 0, fmt.Errorf("adding series: %w", err)
	}
	rows, err := e.pool.Query(ctx, e.sqls.SelectSeries, keys)
	if err != nil {
		return nil, 0, fmt.Errorf("reading series ids: %w", err)
	}
	var key [16]byte
	var id int64
	found := make(map[string]int64, len(missing))
	_, err = pgx.ForEachRow(rows, []any{&key, &id}, func() error {
		found[byKey[key]] = id
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("reading series ids: %w", err)
	}
	for _, m := range missing {
		if _, ok := found[m.id]; !ok {
			return nil, 0, fmt.Errorf("reading series ids: series %q is missing after its insert", m.id)
		}
	}
	return found, tag.RowsAffected(), nil
}

// resolveMetrics makes sure e.metricOf knows the metric of every series in merged. Series added by
// this exporter are known since their insert; the others (series of another collector found in the
// cache, or ids read before the cache was cleared) are read from the series table.
func (e *rollupExporter) resolveMetrics(ctx context.Context, merged map[idKey]float64) error {
	var missing []int64
	for k := range merged {
		if _, ok := e.metricOf[k.series]; !ok {
			missing = append(missing, k.series)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing) // a series has one entry per minute in merged
	missing = slices.Compact(missing)
	rows, err := e.pool.Query(ctx, e.sqls.SelectMetric, missing)
	if err != nil {
		return fmt.Errorf("reading the metrics of series: %w", err)
	}
	var id int64
	var metric string
	if _, err := pgx.ForEachRow(rows, []any{&id, &metric}, func() error {
		e.metricOf[id] = metric
		return nil
	}); err != nil {
		return fmt.Errorf("reading the metrics of series: %w", err)
	}
	for _, id := range missing {
		if _, ok := e.metricOf[id]; !ok {
			return fmt.Errorf("reading the metrics of series: series %d does not exist", id)
		}
	}
	return nil
}

// writeTx is one attempt at the flush transaction: record the item keys, drop the items already
// committed, COPY the pre-aggregated rows of the three resolutions into the staging table, upsert
// each resolution in (series_id, time) order, then each resolution's per-metric totals.
func (e *rollupExporter) writeTx(ctx context.Context, items []*item, merged map[idKey]float64) error {
	now := e.now()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	fresh, repeated, err := e.recordKeys(ctx, tx, items, now)
	if err != nil {
		return err
	}
	var w written
	b := &pgx.Batch{}
	if len(fresh) > 0 {
		if w, err = e.writeCounts(ctx, tx, b, items, fresh, repeated, merged, now); err != nil {
			return err
		}
	}
	// The liveness records last: every collector takes its row locks in the same order.
	// A flush records them at most every flushLiveness (unless sources wait): under load, flushes
	// follow each other closely, and the watermark needs no finer record than that.
	var src sourceRows
	record := !e.skipLiveness.Load() && e.live.due(time.Now(), e.flushLiveness)
	if record {
		src = e.live.take()
		e.live.queue(b, &e.sqls, src)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		e.live.restore(src)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		e.live.restore(src)
		return err
	}
	if record {
		e.live.committed(time.Now(), src)
	}
	e.reportCommit(ctx, len(items), len(fresh), w)
	return nil
}

// recordKeys inserts the distinct keys of items, in key order, and returns those that were not
// committed before (fresh), and whether some key sits more than once in items.
func (e *rollupExporter) recordKeys(ctx context.Context, tx pgx.Tx, items []*item, now time.Time) (fresh map[[16]byte]bool, repeated bool, err error) {
	keys := make([][16]byte, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	slices.SortFunc(keys, func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) })
	// The same request may sit twice in one flush (a client re-sent it): count it once.
	distinct := slices.Compact(keys)
	rows, err := tx.Query(ctx, e.sqls.InsertKeys, distinct, now)
	if err != nil {
		return nil, false, err
	}
	fresh = make(map[[16]byte]bool, len(distinct))
	var k [16]byte
	if _, err := pgx.ForEachRow(rows, []any{&k}, func() error { fresh[k] = true; return nil }); err != nil {
		return nil, false, err
	}
	return fresh, len(distinct) < len(items), nil
}

// written is what one flush transaction wrote, for its telemetry.
type written struct {
	res    [len(resolutions)][]rollupRow
	stored int
	cum    *cumulativeStep
}

// writeCounts writes, in tx, what the fresh items count: their events, their cumulative streams'
// state, then queues to b the upserts of the rollup rows and totals of every resolution. merged
// holds the sums of all the items; it is recomputed from the fresh ones when some were not fresh
// or repeated.
func (e *rollupExporter) writeCounts(ctx context.Context, tx pgx.Tx, b *pgx.Batch, items []*item, fresh map[[16]byte]bool,
	repeated bool, merged map[idKey]float64, now time.Time) (written, error) {
	var w written
	var err error
	if len(fresh) < len(items) || repeated {
		merged = mergeItems(dedupe(items, fresh))
	}
	// Events first: see events.go for why this order avoids lock cycles with partition changes.
	if w.stored, err = e.copyEvents(ctx, tx, items, fresh); err != nil {
		return w, err
	}
	// Then the cumulative streams' rows (locked in key order), then the rollups.
	if w.cum, err = e.cumulativeDeltas(ctx, tx, dedupe(items, fresh), now); err != nil {
		return w, err
	}
	w.res = e.buildRows(merged, w.cum.rollupDeltas(), now)
	if err := e.copyStage(ctx, tx, &w.res); err != nil {
		return w, err
	}
	w.cum.queueWrites(b, &e.sqls, now)
	for i := range resolutions {
		if len(w.res[i]) > 0 {
			b.Queue(e.sqls.Upsert[i])
		}
	}
	// Totals after all rollups, in every collector: the same lock order everywhere.
	for i := range resolutions {
		if len(w.res[i]) > 0 {
			metrics, times, values := metricTotals(w.res[i], e.metricOf)
			b.Queue(e.sqls.UpsertTotals[i], metrics, times, values)
		}
	}
	return w, nil
}

// reportCommit counts a committed flush of n items, of which committed were fresh.
func (e *rollupExporter) reportCommit(ctx context.Context, n, committed int, w written) {
	e.telemetry.ExporterPgrollupItemsCommitted.Add(ctx, int64(committed))
	w.cum.report(ctx, e.telemetry)
	if w.stored > 0 {
		e.telemetry.ExporterPgrollupEventsStored.Add(ctx, int64(w.stored))
	}
	if dup := n - committed; dup > 0 {
		e.telemetry.ExporterPgrollupItemsDuplicate.Add(ctx, int64(dup))
	}
	for i, r := range resolutions {
		if len(w.res[i]) > 0 {
			e.telemetry.ExporterPgrollupRowsWritten.Add(ctx, int64(len(w.res[i])),
				metric.WithAttributeSet(attribute.NewSet(attribute.String("resolution", r.Name))))
		}
	}
}

// dedupe keeps the items whose key is fresh, each key once.
func dedupe(items []*item, fresh map[[16]byte]bool) []*item {
	seen := make(map[[16]byte]bool, len(items))
	out := make([]*item, 0, len(items))
	for _, it := range items {
		if fresh[it.key] && !seen[it.key] {
			seen[it.key] = true
			out = append(out, it)
		}
	}
	return out
}

// buildRows turns the (series, minute) sums, plus the cumulative deltas (any number per series and
// minute), into sorted rows per resolution, leaving out buckets that are already past their
// resolution's retention.
func (e *rollupExporter) buildRows(merged map[idKey]float64, deltas []knownRow, now time.Time) [3][]rollupRow {
	var out [3][]rollupRow
	var cut [3]int64
	for i, r := range resolutions {
		// Buckets starting after the cutoff are kept (see schema.Resolution.Cutoff).
		cut[i] = r.Cutoff(now, e.cfg.Retention.of(r)).Unix() + 1
	}
	// All minute rows sorted by (series, start): the minutes of one hour, and the hours of one
	// day, are then adjacent, so each coarser resolution is one pass over the finer one.
	minutes := make([]rollupRow, 0, len(merged)+len(deltas))
	for k, v := range merged {
		minutes = append(minutes, rollupRow{k.series, k.minute * 60, v})
	}
	for _, d := range deltas {
		minutes = append(minutes, rollupRow{d.series, d.minute * 60, d.value})
	}
	slices.SortFunc(minutes, cmpRow)
	if len(deltas) > 0 {
		minutes = rollUp(minutes, 60) // one row per (series, minute)
	}
	hours := rollUp(minutes, 3600)
	days := rollUp(hours, 86400)
	for i, rows := range [3][]rollupRow{minutes, hours, days} {
		// Keep the buckets at or after the cut (in place: the coarser rows are already built).
		kept := rows[:0]
		for _, r := range rows {
			if r.start >= cut[i] {
				kept = append(kept, r)
			}
		}
		out[i] = kept
	}
	return out
}

// metricTotals sums rows by (metric, bucket start), as the arrays of the totals upsert.
func metricTotals(rows []rollupRow, metricOf map[int64]string) (metrics []string, times []time.Time, values []float64) {
	type bucket struct {
		metric string
		start  int64
	}
	sums := make(map[bucket]float64)
	for _, r := range rows {
		sums[bucket{metricOf[r.series], r.start}] += r.value
	}
	metrics = make([]string, 0, len(sums))
	times = make([]time.Time, 0, len(sums))
	values = make([]float64, 0, len(sums))
	for k, v := range sums {
		metrics = append(metrics, k.metric)
		times = append(times, time.Unix(k.start, 0).UTC())
		values = append(values, v)
	}
	return metrics, times, values
}

// rollUp sums rows sorted by (series, start) into buckets of width seconds, sorted the same way.
func rollUp(rows []rollupRow, width int64) []rollupRow {
	var out []rollupRow
	for _, r := range rows {
		start := floorDiv(r.start, width) * width
		if n := len(out); n > 0 && out[n-1].series == r.series && out[n-1].start == start {
			out[n-1].value += r.value
			continue
		}
		out = append(out, rollupRow{r.series, start, r.value})
	}
	return out
}

// copyStage copies the rows of the three resolutions into the staging table, in COPY's binary
// format built straight from the rows (no per-value boxing). It runs on the flusher goroutine and
// reuses e.stage.
func (e *rollupExporter) copyStage(ctx context.Context, tx pgx.Tx, res *[3][]rollupRow) error {
	e.stage = appendStage(e.stage[:0], res)
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(e.stage), e.sqls.CopyStage)
	return err
}

// pgEpoch is 2000-01-01 UTC in Unix seconds, the epoch of Postgres' binary timestamps.
const pgEpoch = 946684800

// appendStage appends the binary COPY stream of the staging rows to b: the signature, flags and
// header extension length, then per row 4 fields (smallint res, bigint series_id, timestamptz as
// microseconds since 2000-01-01, float8 value), each preceded by its length, then the trailer.
func appendStage(b []byte, res *[3][]rollupRow) []byte {
	n := 0
	for _, rows := range res {
		n += len(rows)
	}
	b = slices.Grow(b, 19+n*46+2)
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	for r, rows := range res {
		for _, row := range rows {
			b = binary.BigEndian.AppendUint16(b, 4)
			b = binary.BigEndian.AppendUint32(b, 2)
			b = binary.BigEndian.AppendUint16(b, uint16(r))
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(row.series))
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64((row.start-pgEpoch)*1_000_000))
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(row.value))
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // trailer: field count -1
}
