package pgrollup

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/zeebo/xxh3"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadata"
)

// Cumulative monotonic sums are counted from a state row per stream in Postgres
// (internal/schema/migrations/004_cumulative_streams.up.sql), read, locked and written in the flush transaction,
// after the request keys and before the rollups:
//
//   - a request whose key is already committed (a replay, a retry after a lost acknowledgement)
//     is skipped whole, so its points neither count nor move any stream's state;
//   - the points of the fresh requests are grouped by stream and sorted by time, and the streams'
//     rows are updated by one UPDATE joined in key order (see cumulativeDeltas), which locks them
//     in that order: two collectors updating the same stream wait on each other in the same order
//     and never deadlock, and the second decides from what the first committed; two collectors
//     creating the same stream at once collide on its primary key, and the loser's transaction is
//     retried from the start;
//   - a transaction that rolls back leaves the state as it was, so its retry computes every delta
//     again from the committed state.
//
// The rules for a point (start time S, time T, cumulative value V) against the stream's state
// (S0, T0, V0), in this order (see the README's "Cumulative sums"):
//
//	no state          first sight: counts V if initial_value says so (auto: S is set and T-S is
//	                  within initial_value_window), else 0 (a baseline); state := (S, T, V)
//	T <= T0           a duplicate or a late point: 0, state unchanged
//	S < S0            a point of an earlier run of the stream (late, or a second writer under the
//	                  same identity): 0, state unchanged
//	S > S0 or V < V0  a reset: the new run counts from 0, so V; state := (S, T, V)
//	otherwise         V - V0; state := (S0, T, V)
//
// The delta of a point counts into the buckets of T, as a delta point does.

// cumPoint is one point of a cumulative monotonic sum, as parsed. It holds no pointer, so that the
// garbage collector never scans the points a flush holds.
type cumPoint struct {
	stream [16]byte // the stream's key (see streamKey)
	series int64    // the rollup series the deltas count into, once known
	start  int64    // start time, Unix nanoseconds
	ts     int64    // time, Unix nanoseconds
	value  float64
}

// cumUnknown is a cumulative point whose series id was unknown at parse time: its index in
// item.cum and the series' canonical identity.
type cumUnknown struct {
	index    int
	identity string
}

// Outcomes of a cumulative point, as indexes into outcomeNames, whose values are the `outcome`
// attribute of the exporter_pgrollup_cumulative_points telemetry metric.
const (
	oDelta = iota
	oInitial
	oBaseline
	oReset
	oDuplicate
	oEarlierStart
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"delta", "initial", "baseline", "reset", "duplicate", "earlier_start"}

// streamState is the state row of a stream.
type streamState struct {
	start, last int64 // Unix nanoseconds
	value       float64
}

// keyPrefixStream starts the input of a stream key's scope hash.
const keyPrefixStream = "pgrollup-stream\x00"

// streamHashing is the parser's state for stream keys.
type streamHashing struct {
	buf []byte
	kvs []kv
	// scope caches the prefix of the last scope hashed in the current request.
	scope struct {
		i, j   int
		ok     bool
		prefix [16]byte
	}
}

// parseCumulative adds the countable points of the cumulative monotonic Sum m, in scope j of
// resource i of md, to it (created when nil), and counts the refused ones in ref. p.resKVs must
// hold resource i's kept attributes.
func (p *parser) parseCumulative(it *item, md pmetric.Metrics, i, j int, m pmetric.Metric, service string, ref *refusals) *item {
	dps := m.Sum().DataPoints()
	var prefix [16]byte
	havePrefix := false
	for d := 0; d < dps.Len(); d++ {
		dp := dps.At(d)
		v, ts, ok := p.checkPoint(dp, m.Name(), ref)
		if !ok {
			continue
		}
		if it == nil {
			it = p.newItem(md.DataPointCount())
		}
		if it.cum == nil {
			it.cum = make([]cumPoint, 0, md.DataPointCount())
		}
		if !havePrefix {
			prefix, havePrefix = p.scopePrefix(md, i, j), true
		}
		c := cumPoint{stream: p.streamKey(prefix, m.Name(), dp.Attributes()), start: int64(dp.StartTimestamp()), ts: ts, value: v}
		var identity string
		if c.series, identity = p.seriesOf(it, m.Name(), service, dp.Attributes()); identity != "" {
			it.cumUnknown = append(it.cumUnknown, cumUnknown{len(it.cum), identity})
		}
		it.cum = append(it.cum, c)
		it.points++
	}
	return it
}

// scopePrefix returns the hash of the resource and the scope (name, version, attributes) of scope
// j of resource i, the part of a stream key shared by the scope's streams. It is computed once per
// scope and request.
func (p *parser) scopePrefix(md pmetric.Metrics, i, j int) [16]byte {
	if p.stream.scope.ok && p.stream.scope.i == i && p.stream.scope.j == j {
		return p.stream.scope.prefix
	}
	rm := md.ResourceMetrics().At(i)
	sc := rm.ScopeMetrics().At(j).Scope()
	b := append(p.stream.buf[:0], keyPrefixStream...)
	b = p.appendSortedAttrs(b, rm.Resource().Attributes())
	b = appendString(b, sc.Name())
	b = appendString(b, sc.Version())
	b = p.appendSortedAttrs(b, sc.Attributes())
	p.stream.buf = b
	p.stream.scope.i, p.stream.scope.j, p.stream.scope.ok = i, j, true
	p.stream.scope.prefix = xxh3.Hash128(b).Bytes()
	return p.stream.scope.prefix
}

// streamKey returns the key of a stream: the XXH3-128 hash of its scope prefix, its metric name and
// its point attributes sorted by key, each typed and length-prefixed. Keys are stored, so this
// encoding must never change (TestStreamKeyStable pins it): a changed key would make every stream
// a first sight again.
func (p *parser) streamKey(prefix [16]byte, metric string, attrs pcommon.Map) [16]byte {
	b := append(p.stream.buf[:0], prefix[:]...)
	b = appendString(b, metric)
	b = p.appendSortedAttrs(b, attrs)
	p.stream.buf = b
	return xxh3.Hash128(b).Bytes()
}

// appendSortedAttrs appends the number of attributes in m, then each key and value (as in lookup
// keys) in key order, so that the order a sender puts them in does not matter.
func (p *parser) appendSortedAttrs(b []byte, m pcommon.Map) []byte {
	p.stream.kvs = p.stream.kvs[:0]
	for k, v := range m.All() {
		p.stream.kvs = append(p.stream.kvs, kv{k, v})
	}
	if !slices.IsSortedFunc(p.stream.kvs, cmpKV) {
		slices.SortStableFunc(p.stream.kvs, cmpKV)
	}
	b = binary.AppendUvarint(b, uint64(len(p.stream.kvs)))
	for _, e := range p.stream.kvs {
		b = appendLookupKV(b, e.key, e.val)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// cumulativeMetricsMissing returns the series of the items' cumulative points whose metric
// e.metricOf lacks, as keys of the map resolveMetrics takes (minute 0, value 0), or nil. It runs on
// the flusher goroutine.
func (e *rollupExporter) cumulativeMetricsMissing(items []*item) map[idKey]float64 {
	var out map[idKey]float64
	for _, it := range items {
		for i := range it.cum {
			if _, ok := e.metricOf[it.cum[i].series]; !ok {
				if out == nil {
					out = make(map[idKey]float64)
				}
				out[idKey{series: it.cum[i].series}] = 0
			}
		}
	}
	return out
}

// cumulativeIdentities calls f with the series identity of every cumulative point of it whose
// series id was unknown at parse time.
func cumulativeIdentities(it *item, f func(identity string)) {
	for _, u := range it.cumUnknown {
		f(u.identity)
	}
}

// resolveCumulativeSeries sets the series id of the cumulative points whose series was unknown at
// parse time; addSeries has stored and cached those series.
func (e *rollupExporter) resolveCumulativeSeries(items []*item) {
	for _, it := range items {
		for _, u := range it.cumUnknown {
			it.cum[u.index].series = e.ids.ids[u.identity]
		}
		it.cumUnknown = nil
	}
}

// cumulativeStep is what one flush transaction does with the cumulative points of its fresh
// requests: the deltas to add to the rollups and the stream rows to write.
type cumulativeStep struct {
	deltas []knownRow
	// The state rows to update and to insert, each as column arrays sorted by key.
	upd, ins streamRows
	outcomes [numOutcomes]int64
}

// streamRows holds state rows as column arrays, in the order they were added, for unnest.
type streamRows struct {
	keys          pgArray[uuidElem]
	series        pgArray[int8Elem]
	starts, lasts pgArray[int8Elem]
	values        pgArray[float8Elem]
}

func (r *streamRows) add(key [16]byte, series int64, s streamState) {
	r.keys = append(r.keys, key)
	r.series = append(r.series, int8Elem(series))
	r.starts = append(r.starts, int8Elem(s.start))
	r.lasts = append(r.lasts, int8Elem(s.last))
	r.values = append(r.values, float8Elem(s.value))
}

func (r *streamRows) reset() {
	r.keys, r.series, r.starts, r.lasts, r.values = r.keys[:0], r.series[:0], r.starts[:0], r.lasts[:0], r.values[:0]
}

// pgArray is a slice passed to Postgres as a one-dimensional array without boxing each element
// into an interface, as pgx's encoding of a plain slice does (one allocation per element): Index
// returns a pointer into the slice, whose valuer method (pgtype.UUIDValuer, Int64Valuer,
// Float64Valuer) the element's codec calls.
type pgArray[T any] []T

func (a pgArray[T]) Dimensions() []pgtype.ArrayDimension {
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}

func (a pgArray[T]) Index(i int) any { return &a[i] }

func (a pgArray[T]) IndexType() any { return (*T)(nil) }

// The elements of pgArray: uuid, bigint and double precision.
type (
	uuidElem   [16]byte
	int8Elem   int64
	float8Elem float64
)

func (u *uuidElem) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: *u, Valid: true}, nil }

func (v *int8Elem) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*v), Valid: true}, nil
}

func (v *float8Elem) Float64Value() (pgtype.Float8, error) {
	return pgtype.Float8{Float64: float64(*v), Valid: true}, nil
}

// cumulativeDeltas computes each point's delta and each stream's new state for the cumulative
// points of items (the fresh ones of the transaction, each once), and writes the state of the
// streams that have a row, locking those rows in key order:
//
//  1. per stream, its points sorted by time, the first point p1 and the state F its points lead
//     to once p1 is taken (p1 later than the stored state and not of an earlier run: the common
//     case, where F does not depend on the stored state);
//  2. one UPDATE of every stream's row, joined in key order (a nested loop over the sorted keys,
//     so rows are locked in key order in every collector), that writes F where that condition
//     holds and returns the state it found (kept in the prev_ columns by the same UPDATE);
//  3. from the state found, the rules for every point; a row where the condition did not hold is
//     locked and unchanged, and gets its state from a second UPDATE (queueWrites). A stream
//     without a row is inserted (queueWrites), after all the row locks.
//
// Waiting on a row another collector holds, the UPDATE re-reads the row that collector committed
// and decides on it (READ COMMITTED), so both count from the committed state.
func (e *rollupExporter) cumulativeDeltas(ctx context.Context, tx pgx.Tx, items []*item, now time.Time) (*cumulativeStep, error) {
	n := 0
	for _, it := range items {
		n += len(it.cum)
	}
	if n == 0 {
		return nil, nil
	}
	cfg := e.cfg.Cumulative
	g := &e.cumGroups
	g.group(items, n)
	// The rules for the points after p1, once p1 is taken: their deltas (group gi's are
	// chain.deltas[chainEnd[gi-1]:chainEnd[gi]] in key order) and the final state.
	sc := &g.scratch
	sc.reset(len(g.keys))
	adv, chain, chainEnd := &sc.adv, &sc.chain, sc.chainEnd
	firstStarts, firstTimes, finals := sc.firstStarts, sc.firstTimes, sc.finals
	for _, gi := range g.byKey {
		pts := g.points(gi)
		if !slices.IsSortedFunc(pts, cmpCumTime) {
			slices.SortFunc(pts, cmpCumTime)
		}
		p1 := &pts[0]
		finals[gi] = chain.apply(cfg, pts[1:], streamState{start: p1.start, last: p1.ts, value: p1.value}, true)
		chainEnd[gi] = len(chain.deltas)
		adv.add(g.keys[gi], pts[len(pts)-1].series, finals[gi])
		firstStarts = append(firstStarts, int8Elem(p1.start))
		firstTimes = append(firstTimes, int8Elem(p1.ts))
	}
	sc.firstStarts, sc.firstTimes = firstStarts, firstTimes
	b := &sc.batch
	b.QueuedQueries = b.QueuedQueries[:0]
	// Join in key order: a hash join would lock rows in the table's physical order.
	b.Queue("SET LOCAL enable_hashjoin = off")
	b.Queue("SET LOCAL enable_mergejoin = off")
	b.Queue(e.sqls.AdvanceStreams, adv.keys, adv.series, firstStarts, firstTimes, adv.starts, adv.lasts, adv.values, now)
	b.Queue("SET LOCAL enable_hashjoin TO DEFAULT")
	b.Queue("SET LOCAL enable_mergejoin TO DEFAULT")
	br := tx.SendBatch(ctx, b)
	found, olds, advanced := sc.found, sc.olds, sc.advanced
	err := func() error {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var k [16]byte
		var old streamState
		var last int64
		if _, err := pgx.ForEachRow(rows, []any{&k, &old.start, &old.last, &old.value, &last}, func() error {
			gi := g.index[k]
			found[gi], olds[gi], advanced[gi] = true, old, last != old.last
			return nil
		}); err != nil {
			return err
		}
		return br.Close()
	}()
	if err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("advancing cumulative streams: %w", err)
	}
	step := &sc.step
	step.upd.reset()
	step.ins.reset()
	run := &sc.run
	run.deltas, run.outcomes = slices.Grow(run.deltas[:0], len(chain.deltas)+len(g.keys)), [numOutcomes]int64{}
	scratch := &sc.rest
	chainStart := 0
	for _, gi := range g.byKey {
		pts := g.points(gi)
		if advanced[gi] {
			// p1 against the state found, then the chain computed before.
			st := run.apply(cfg, pts[:1], olds[gi], true)
			if st != (streamState{start: pts[0].start, last: pts[0].ts, value: pts[0].value}) {
				return nil, fmt.Errorf("advancing cumulative streams: the first point was not taken (%+v after %+v)", st, olds[gi])
			}
			for _, d := range chain.deltas[chainStart:chainEnd[gi]] {
				run.add(d.series, d.minute, d.value)
			}
		} else {
			// A new stream, or a late point first, or one of an earlier run (the row is locked
			// and unchanged): all the rules, and the chain's outcomes taken back.
			st := run.apply(cfg, pts, olds[gi], found[gi])
			scratch.outcomes = [numOutcomes]int64{}
			scratch.apply(cfg, pts[1:], streamState{start: pts[0].start, last: pts[0].ts, value: pts[0].value}, true)
			for o, n := range scratch.outcomes {
				chain.outcomes[o] -= n
			}
			scratch.deltas = scratch.deltas[:0]
			if found[gi] {
				step.upd.add(g.keys[gi], pts[len(pts)-1].series, st)
			} else {
				step.ins.add(g.keys[gi], pts[len(pts)-1].series, st)
			}
		}
		chainStart = chainEnd[gi]
	}
	step.deltas = run.deltas
	for o := range step.outcomes {
		step.outcomes[o] = run.outcomes[o] + chain.outcomes[o]
	}
	return step, nil
}

// rulesRun accumulates the deltas and outcomes of the rules applied to streams one after another.
type rulesRun struct {
	deltas   []knownRow // the deltas of one stream in one minute are one row
	outcomes [numOutcomes]int64
}

// apply applies the rules to pts, the points of one stream sorted by time, from the state st
// (have: whether there is one), and returns the stream's state after them.
func (r *rulesRun) apply(cfg CumulativeConfig, pts []cumPoint, st streamState, have bool) streamState {
	for i := range pts {
		var delta float64
		var o int
		delta, o, st, have = nextState(cfg, &pts[i], st, have)
		r.outcomes[o]++
		if delta != 0 {
			r.add(pts[i].series, floorDiv(pts[i].ts, int64(time.Minute)), delta)
		}
	}
	return st
}

// add adds a delta, merging it into the last row when that is the same series and minute.
func (r *rulesRun) add(series, minute int64, delta float64) {
	if d := len(r.deltas) - 1; d >= 0 && r.deltas[d].series == series && r.deltas[d].minute == minute {
		r.deltas[d].value += delta
		return
	}
	r.deltas = append(r.deltas, knownRow{series, minute, delta})
}

// cumScratch is the memory of cumulativeDeltas, reused from flush to flush: each slice is cut to
// length 0 (or to one zeroed entry per group) when a flush starts. The step it returns points into
// it, so it is valid until the next call.
type cumScratch struct {
	adv                     streamRows
	chain, run, rest        rulesRun
	chainEnd                []int
	firstStarts, firstTimes pgArray[int8Elem]
	finals, olds            []streamState
	found, advanced         []bool
	batch                   pgx.Batch
	step                    cumulativeStep
}

// reset prepares sc for a flush of n streams.
func (sc *cumScratch) reset(n int) {
	sc.adv.reset()
	sc.chain.deltas, sc.chain.outcomes = sc.chain.deltas[:0], [numOutcomes]int64{}
	sc.rest.deltas = sc.rest.deltas[:0]
	sc.chainEnd = resize(sc.chainEnd, n)
	sc.firstStarts, sc.firstTimes = sc.firstStarts[:0], sc.firstTimes[:0]
	sc.finals, sc.olds = resize(sc.finals, n), resize(sc.olds, n)
	sc.found, sc.advanced = resize(sc.found, n), resize(sc.advanced, n)
}

// resize returns s with length n, all zero, reusing its memory when it is large enough.
func resize[T any](s []T, n int) []T {
	s = slices.Grow(s[:0], n)[:n]
	clear(s)
	return s
}

// streamGroups holds the cumulative points of a flush grouped by stream. The flusher keeps one
// and reuses its memory from flush to flush.
type streamGroups struct {
	scratch cumScratch

	keys    [][16]byte         // by group
	index   map[[16]byte]int32 // stream key -> group
	byKey   []int32            // the groups in key order
	offs    []int32            // group g's points are pts[offs[g]:offs[g+1]]
	pts     []cumPoint
	groupOf []int32 // scratch: the group of each point in item order
	counts  []int32 // scratch: points per group
}

func (g *streamGroups) points(gi int32) []cumPoint { return g.pts[g.offs[gi]:g.offs[gi+1]] }

// group copies the n cumulative points of items into g, grouped by stream: one map look-up per
// point, and a sort of the streams only (a flush holds many points of few streams).
func (g *streamGroups) group(items []*item, n int) {
	if g.index == nil || len(g.index) > 1_000_000 {
		g.index = make(map[[16]byte]int32) // do not keep a huge map after a huge flush
	}
	clear(g.index)
	g.keys = g.keys[:0]
	groupOf := g.groupOf[:0]
	counts := g.counts[:0]
	for _, it := range items {
		for i := range it.cum {
			k := it.cum[i].stream
			gi, ok := g.index[k]
			if !ok {
				gi = int32(len(g.keys))
				g.index[k] = gi
				g.keys = append(g.keys, k)
				counts = append(counts, 0)
			}
			counts[gi]++
			groupOf = append(groupOf, gi)
		}
	}
	g.offs = slices.Grow(g.offs[:0], len(g.keys)+1)[:len(g.keys)+1]
	g.offs[0] = 0
	for gi, c := range counts {
		g.offs[gi+1] = g.offs[gi] + c
	}
	next := counts // reused as each group's next free slot
	copy(next, g.offs[:len(g.keys)])
	g.pts = slices.Grow(g.pts[:0], n)[:n]
	p := 0
	for _, it := range items {
		for i := range it.cum {
			gi := groupOf[p]
			g.pts[next[gi]] = it.cum[i]
			next[gi]++
			p++
		}
	}
	g.byKey = g.byKey[:0]
	for i := range g.keys {
		g.byKey = append(g.byKey, int32(i))
	}
	slices.SortFunc(g.byKey, func(a, b int32) int { return slices.Compare(g.keys[a][:], g.keys[b][:]) })
	g.groupOf, g.counts = groupOf, counts
}

// nextState applies the rules to one point c of a stream whose state is st (have: whether it has
// one) and returns the point's delta, its outcome and the stream's new state.
func nextState(cfg CumulativeConfig, c *cumPoint, st streamState, have bool) (float64, int, streamState, bool) {
	next := streamState{start: c.start, last: c.ts, value: c.value}
	switch {
	case !have:
		if countsInitially(cfg, c) {
			return c.value, oInitial, next, true
		}
		return 0, oBaseline, next, true
	case c.ts <= st.last:
		return 0, oDuplicate, st, true
	case c.start < st.start:
		return 0, oEarlierStart, st, true
	case c.start > st.start || c.value < st.value:
		return c.value, oReset, next, true
	default:
		return c.value - st.value, oDelta, next, true
	}
}

// countsInitially reports whether the first point of a stream counts its whole value.
func countsInitially(cfg CumulativeConfig, c *cumPoint) bool {
	switch cfg.InitialValue {
	case InitialValueKeep:
		return true
	case InitialValueDrop:
		return false
	}
	age := c.ts - c.start
	return c.start > 0 && age >= 0 && age <= int64(cfg.InitialValueWindow)
}

// cmpCumTime orders the points of one stream by time, then start time and value, so that the
// outcome does not depend on the order of the requests.
func cmpCumTime(a, b cumPoint) int {
	if c := cmp.Compare(a.ts, b.ts); c != 0 {
		return c
	}
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	return cmp.Compare(a.value, b.value)
}

// queueWrites queues the state writes of step that the advancing UPDATE left: the updates of the
// locked rows it could not advance, then the inserts of the new streams in key order (a stream another transaction inserted meanwhile makes the insert
// fail with a unique violation, and the flush retries the transaction).
func (step *cumulativeStep) queueWrites(b *pgx.Batch, sqls *schema.Statements, now time.Time) {
	if step == nil {
		return
	}
	if len(step.upd.keys) > 0 {
		b.Queue(sqls.UpdateStreams, step.upd.keys, step.upd.series, step.upd.starts, step.upd.lasts, step.upd.values, now)
	}
	if len(step.ins.keys) > 0 {
		b.Queue(sqls.InsertStreams, step.ins.keys, step.ins.series, step.ins.starts, step.ins.lasts, step.ins.values, now)
	}
}

// rollupDeltas returns the deltas of step to add to the rollups (nil when step is nil).
func (step *cumulativeStep) rollupDeltas() []knownRow {
	if step == nil {
		return nil
	}
	return step.deltas
}

// report counts the outcomes of a committed step in the telemetry.
func (step *cumulativeStep) report(ctx context.Context, tb *metadata.TelemetryBuilder) {
	if step == nil {
		return
	}
	for o, n := range step.outcomes {
		if n > 0 {
			tb.ExporterPgrollupCumulativePoints.Add(ctx, n,
				metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", outcomeNames[o]))))
		}
	}
}

// expireStreams removes, schema.DeleteBatch rows per statement, the state of the streams not written
// since now - cumulative::max_staleness, and counts them.
func (e *rollupExporter) expireStreams(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-e.cfg.Cumulative.MaxStaleness)
	var total int64
	defer func() {
		if total > 0 {
			e.telemetry.ExporterPgrollupStreamsExpired.Add(ctx, total)
		}
	}()
	for {
		tag, err := e.pool.Exec(ctx, e.sqls.ExpireStreams, cutoff)
		if err != nil {
			return fmt.Errorf("expiring cumulative streams: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < schema.DeleteBatch {
			if total > 0 {
				e.logger.Debug("expired the state of stale cumulative streams", zap.Int64("streams", total))
			}
			return nil
		}
	}
}
