package pgrollup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// resolution is one rollup table.
type resolution struct {
	name  string
	width time.Duration
	table string
}

var resolutions = [3]resolution{
	{"minute", time.Minute, "rollup_minute"},
	{"hour", time.Hour, "rollup_hour"},
	{"day", 24 * time.Hour, "rollup_day"},
}

// createStage creates, once per connection, the staging table a flush copies its rows into.
const createStage = `CREATE TEMP TABLE IF NOT EXISTS pgrollup_stage (
    res       smallint         NOT NULL,
    series_id bigint           NOT NULL,
    time      timestamptz      NOT NULL,
    value     double precision NOT NULL
) ON COMMIT DELETE ROWS`

// statements holds the SQL of the write path for one schema.
type statements struct {
	insertKeys   string
	insertSeries string
	selectSeries string
	upsert       [3]string
}

func newStatements(schema string) statements {
	s := statements{
		// Keys sorted, so that two collectors inserting the same keys wait on each other instead of
		// deadlocking. ON CONFLICT DO NOTHING waits for a concurrent inserter of the same key and then
		// skips it if that transaction committed: the request is counted by exactly one of them.
		insertKeys: `INSERT INTO ` + schema + `.item_keys (key, created_at)
SELECT k, $2 FROM unnest($1::uuid[]) AS k ORDER BY k
ON CONFLICT (key) DO NOTHING RETURNING key`,
		insertSeries: `INSERT INTO ` + schema + `.series (key, metric, service, attributes)
SELECT k, m, s, a::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(k, m, s, a) ORDER BY k
ON CONFLICT (key) DO NOTHING`,
		selectSeries: `SELECT key, id FROM ` + schema + `.series WHERE key = ANY($1::uuid[])`,
	}
	for i, r := range resolutions {
		s.upsert[i] = fmt.Sprintf(`INSERT INTO %[1]s.%[2]s AS r (series_id, time, value)
SELECT series_id, time, value FROM pg_temp.pgrollup_stage WHERE res = %[3]d ORDER BY series_id, time
ON CONFLICT (series_id, time) DO UPDATE SET value = r.value + excluded.value`, schema, r.table, i)
	}
	return s
}

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

// flush writes items in one transaction, skipping those whose key is already committed. It is
// called by the flusher goroutine only.
func (e *rollupExporter) flush(ctx context.Context, items []*item) error {
	start := time.Now()
	merged := mergeItems(items)
	if err := e.resolveSeries(ctx, merged); err != nil {
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

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40P01", "40001", "23505": // deadlock, serialization failure, unique violation
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err)
}

// mergeItems sums the rows of items.
func mergeItems(items []*item) map[aggKey]float64 {
	n := 0
	for _, it := range items {
		n += len(it.rows)
	}
	merged := make(map[aggKey]float64, n)
	for _, it := range items {
		for k, v := range it.rows {
			merged[k] += v
		}
	}
	return merged
}

// resolveSeries makes sure every series of merged has an id in e.series, inserting new series
// (sorted by key, ON CONFLICT DO NOTHING, so concurrent collectors neither fail nor duplicate) and
// reading their ids back. It runs outside the flush transaction: a series row without counts is
// harmless.
func (e *rollupExporter) resolveSeries(ctx context.Context, merged map[aggKey]float64) error {
	if len(e.series) > 2_000_000 {
		clear(e.series) // bound the cache; ids are re-read on demand
	}
	type newSeries struct {
		key [16]byte
		id  string
	}
	var missing []newSeries
	seen := make(map[string]bool)
	for k := range merged {
		if _, ok := e.series[k.series]; ok || seen[k.series] {
			continue
		}
		seen[k.series] = true
		missing = append(missing, newSeries{seriesKey(k.series), k.series})
	}
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b newSeries) int { return slices.Compare(a.key[:], b.key[:]) })
	byKey := make(map[[16]byte]string, len(missing))
	keys := make([][16]byte, len(missing))
	metrics := make([]string, len(missing))
	services := make([]string, len(missing))
	attrs := make([]string, len(missing))
	for i, m := range missing {
		keys[i] = m.key
		metrics[i], services[i], attrs[i] = splitIdentity(m.id)
		byKey[m.key] = m.id
	}
	if _, err := e.pool.Exec(ctx, e.sqls.insertSeries, keys, metrics, services, attrs); err != nil {
		return fmt.Errorf("adding series: %w", err)
	}
	rows, err := e.pool.Query(ctx, e.sqls.selectSeries, keys)
	if err != nil {
		return fmt.Errorf("reading series ids: %w", err)
	}
	var key [16]byte
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&key, &id}, func() error {
		e.series[byKey[key]] = id
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading series ids: %w", err)
	}
	for _, m := range missing {
		if _, ok := e.series[m.id]; !ok {
			return fmt.Errorf("reading series ids: series %q is missing after its insert", m.id)
		}
	}
	e.telemetry.ExporterPgrollupSeriesCreated.Add(ctx, int64(len(missing)))
	return nil
}

// writeTx is one attempt at the flush transaction: record the item keys, drop the items already
// committed, COPY the pre-aggregated rows of the three resolutions into the staging table, and
// upsert each resolution in (series_id, time) order.
func (e *rollupExporter) writeTx(ctx context.Context, items []*item, merged map[aggKey]float64) error {
	now := e.now()
	keys := make([][16]byte, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	slices.SortFunc(keys, func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) })
	// The same request may sit twice in one flush (a client re-sent it): count it once.
	distinct := slices.Compact(keys)
	repeated := len(distinct) < len(items)

	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	rows, err := tx.Query(ctx, e.sqls.insertKeys, distinct, now)
	if err != nil {
		return err
	}
	fresh := make(map[[16]byte]bool, len(distinct))
	var k [16]byte
	if _, err := pgx.ForEachRow(rows, []any{&k}, func() error { fresh[k] = true; return nil }); err != nil {
		return err
	}
	committed := len(fresh)
	if committed < len(distinct) || repeated {
		merged = mergeItems(dedupe(items, fresh))
	}
	var res [3][]rollupRow
	var stored int
	if committed > 0 {
		// Events first: see events.go for why this order avoids lock cycles with partition changes.
		if stored, err = e.copyEvents(ctx, tx, items, fresh); err != nil {
			return err
		}
		res = e.buildRows(merged, now)
		if err := e.copyStage(ctx, tx, &res); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for i := range resolutions {
			if len(res[i]) > 0 {
				b.Queue(e.sqls.upsert[i])
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	e.telemetry.ExporterPgrollupItemsCommitted.Add(ctx, int64(committed))
	if stored > 0 {
		e.telemetry.ExporterPgrollupEventsStored.Add(ctx, int64(stored))
	}
	if dup := len(items) - committed; dup > 0 {
		e.telemetry.ExporterPgrollupItemsDuplicate.Add(ctx, int64(dup))
	}
	for i, r := range resolutions {
		if len(res[i]) > 0 {
			e.telemetry.ExporterPgrollupRowsWritten.Add(ctx, int64(len(res[i])),
				metric.WithAttributeSet(attribute.NewSet(attribute.String("resolution", r.name))))
		}
	}
	return nil
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

// buildRows turns the (series, minute) sums into sorted rows per resolution, leaving out buckets
// that are already past their resolution's retention.
func (e *rollupExporter) buildRows(merged map[aggKey]float64, now time.Time) [3][]rollupRow {
	var out [3][]rollupRow
	var cut [3]int64
	for i, r := range resolutions {
		// A bucket is kept while its end is after now - retention (see retention.go).
		cut[i] = now.Add(-e.cfg.Retention.get(r)-r.width).Unix() + 1
	}
	type hk struct{ series, start int64 }
	hours := make(map[hk]float64)
	days := make(map[hk]float64)
	out[0] = make([]rollupRow, 0, len(merged))
	for k, v := range merged {
		id := e.series[k.series]
		start := k.minute * 60
		if start >= cut[0] {
			out[0] = append(out[0], rollupRow{id, start, v})
		}
		hours[hk{id, floorDiv(start, 3600) * 3600}] += v
		days[hk{id, floorDiv(start, 86400) * 86400}] += v
	}
	for i, m := range []map[hk]float64{hours, days} {
		rows := make([]rollupRow, 0, len(m))
		for k, v := range m {
			if k.start >= cut[i+1] {
				rows = append(rows, rollupRow{k.series, k.start, v})
			}
		}
		out[i+1] = rows
	}
	for i := range out {
		slices.SortFunc(out[i], cmpRow)
	}
	return out
}

// copyStage copies the rows of the three resolutions into the staging table.
func (e *rollupExporter) copyStage(ctx context.Context, tx pgx.Tx, res *[3][]rollupRow) error {
	src := &stageSource{res: res, vals: make([]any, 4)}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"pgrollup_stage"}, []string{"res", "series_id", "time", "value"}, src)
	return err
}

// stageSource feeds CopyFrom from the row slices without building a [][]any.
type stageSource struct {
	res  *[3][]rollupRow
	r, i int
	vals []any
}

func (s *stageSource) Next() bool {
	for s.r < len(s.res) {
		if s.i < len(s.res[s.r]) {
			s.i++
			return true
		}
		s.r++
		s.i = 0
	}
	return false
}

func (s *stageSource) Values() ([]any, error) {
	row := s.res[s.r][s.i-1]
	s.vals[0] = int16(s.r)
	s.vals[1] = row.series
	s.vals[2] = time.Unix(row.start, 0).UTC()
	s.vals[3] = row.value
	return s.vals, nil
}

func (s *stageSource) Err() error { return nil }
