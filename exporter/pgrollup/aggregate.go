package pgrollup

import (
	"encoding/binary"
	"errors"
	"github.com/trackhq/track/exporter/pgrollup/internal/identity"
	"github.com/trackhq/track/internal/conventions"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The reasons a data point is refused, as indexes into reasonNames, whose values are the `reason`
// attribute of the exporter_pgrollup_points_refused telemetry metric.
const (
	rTemporality = iota
	rNonMonotonic
	rGauge
	rHistogram
	rUnsupported
	rNaN
	rInf
	rNegative
	rTooOld
	rFuture
	rNameTooLong
	rTooLarge
	numReasons
)

var reasonNames = [numReasons]string{"unspecified_temporality", "non_monotonic", "gauge", "histogram",
	"unsupported_type", "nan", "inf", "negative", "too_old", "future", "name_too_long", "too_large"}

// Errors describing refused data points; they are only logged (at most once per metric name), and
// the points counted in telemetry by reason, while the rest of the request is written. No caller
// sees them, so they are not exported.
var (
	// errNotCounter refuses non-monotonic sums, sums without a temporality, gauges, histograms and
	// summaries.
	errNotCounter = errors.New("only monotonic Sums with delta or cumulative temporality are counted; non-monotonic " +
		"sums, sums of unspecified temporality, gauges, histograms and summaries are refused")
	// errBadValue refuses NaN, infinite and negative values.
	errBadValue = errors.New("NaN, infinite and negative values are refused")
	// errOutOfRange refuses points older than the longest retention or more than
	// conventions.MaxFuture (1 hour) in the future.
	errOutOfRange = errors.New("points older than the longest retention or more than 1 hour in the future are refused")
	// errNameTooLong refuses metric and event names longer than 1024 bytes: a name is indexed in
	// Postgres, whose btree entries hold at most 2,704 bytes, and cutting it could merge two series.
	errNameTooLong = errors.New("metric and event names longer than 1024 bytes are refused")
	// errTooLarge refuses values (deltas, and cumulative values) above 2^53: a double no longer
	// counts in units beyond it, and the bound keeps the rollup sums from overflowing.
	errTooLarge = errors.New("values above 2^53 are refused")
)

var reasonErrs = [numReasons]error{errNotCounter, errNotCounter, errNotCounter, errNotCounter, errNotCounter,
	errBadValue, errBadValue, errBadValue, errOutOfRange, errOutOfRange, errNameTooLong, errTooLarge}

// aggKey is one (series, minute) bucket: series is the series' canonical identity (see
// appendIdentity) and minute the bucket start in Unix minutes (UTC).
type aggKey struct {
	series string
	minute int64
}

// knownRow is one counted point (or event) of a series whose id was already known when the
// request was parsed; minute is the bucket start in Unix minutes (UTC).
type knownRow struct {
	series int64
	minute int64
	value  float64
}

// seriesCache maps series to their ids in the series table. The flusher adds and clears entries
// under mu; parsers read it under mu's read lock. Ids never change once stored (series rows are
// never deleted), so an id read before a clear stays valid.
type seriesCache struct {
	mu sync.RWMutex
	// ids is keyed by the canonical identity (see identityBytes), which the series table's key is
	// derived from; the flusher resolves new series with it.
	ids map[string]int64
	// byLookup is keyed by lookup keys (see lookupBytes), which parsers build for every point
	// because they are cheaper than the canonical identity.
	byLookup map[string]int64
}

func newSeriesCache() *seriesCache {
	return &seriesCache{ids: make(map[string]int64), byLookup: make(map[string]int64)}
}

// item is one pushed request, pre-aggregated by (series, minute), waiting for the flush that
// commits it. Its key is the idempotency key recorded with the counts.
type item struct {
	key [16]byte
	// rows holds the points of series that were not in the series cache at parse time, by their
	// canonical identity; known the points of series with a known id, one entry per point. The
	// flush resolves rows to ids and moves them into known.
	rows map[aggKey]float64
	// lookups holds, for each canonical identity in rows, the lookup key it was seen with, so that
	// the flush can add it to the series cache.
	lookups map[string]string
	known   []knownRow
	// cum holds the points of cumulative sums, one entry per point: their deltas depend on the
	// stream state in Postgres and are computed in the flush transaction (see cumulative.go).
	cum        []cumPoint
	cumUnknown []cumUnknown
	points     int
	// events are the raw events of a logs request, written to the events table with the rollups.
	events []eventRow
	// done is closed when the flush holding the item ends; err then holds its outcome.
	done chan struct{}
	err  error
	// cancelled is set (under exporter.mu) when the push gave up before a flush took the item.
	cancelled bool
}

// refusals counts refused points by reason, and remembers one metric name per reason for the log.
type refusals struct {
	n     [numReasons]int64
	names [numReasons][]string
}

func (r *refusals) add(reason int, metric string, n int) {
	if n == 0 {
		return
	}
	r.n[reason] += int64(n)
	if !slices.Contains(r.names[reason], metric) && len(r.names[reason]) < 16 {
		r.names[reason] = append(r.names[reason], metric)
	}
}

// parser turns requests into items. It is not safe for concurrent use; the exporter keeps a pool.
type parser struct {
	keep     map[string]bool // kept resource attributes, service.name excluded
	now      time.Time
	oldest   int64 // refuse points before this Unix nanosecond
	newest   int64 // refuse points after this Unix nanosecond
	buf      []byte
	lookup   []byte
	kvs      []kv
	resKVs   []kv
	interned map[string]string
	stream   streamHashing
	// cache, when set, is the exporter's series cache: points of cached series skip the identity
	// string and the per-request map.
	cache *seriesCache
	// rep counts the strings repaired while parsing the current request (see sanitize.go).
	rep repairs
}

type kv struct {
	key string
	val pcommon.Value
}

func newParser(keepResource []string) *parser {
	keep := make(map[string]bool)
	for _, k := range keepResource {
		if k != conventions.ServiceName {
			keep[k] = true
		}
	}
	return &parser{keep: keep, interned: make(map[string]string)}
}

// parse aggregates the countable points of md by (series, minute) and counts the refused ones.
// now and longest bound the accepted timestamps. It returns a nil item when nothing is countable.
func (p *parser) parse(md pmetric.Metrics, now time.Time, longest time.Duration) (*item, refusals) {
	var ref refusals
	p.begin(now, longest)
	defer p.end()
	var it *item
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		service := p.readResource(rm.Resource())
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Name() == conventions.Heartbeat {
					// A track process's heartbeat: its resource is a source (see liveness.go); it
					// counts nothing.
					continue
				}
				switch m.Type() {
				case pmetric.MetricTypeSum:
					sum := m.Sum()
					dps := sum.DataPoints()
					name := m.Name()
					switch {
					case len(name) > maxNameBytes:
						ref.add(rNameTooLong, name, dps.Len())
						continue
					case !sum.IsMonotonic():
						ref.add(rNonMonotonic, name, dps.Len())
						continue
					case sum.AggregationTemporality() == pmetric.AggregationTemporalityCumulative:
						it = p.parseCumulative(it, md, i, j, m, service, &ref)
						continue
					case sum.AggregationTemporality() != pmetric.AggregationTemporalityDelta:
						ref.add(rTemporality, name, dps.Len())
						continue
					}
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						v, ts, ok := p.checkPoint(dp, name, &ref)
						if !ok {
							continue
						}
						if it == nil {
							it = p.newItem(md.DataPointCount())
						}
						p.count(it, name, service, dp.Attributes(), ts, v)
					}
				case pmetric.MetricTypeGauge:
					ref.add(rGauge, m.Name(), m.Gauge().DataPoints().Len())
				case pmetric.MetricTypeHistogram:
					ref.add(rHistogram, m.Name(), m.Histogram().DataPoints().Len())
				case pmetric.MetricTypeExponentialHistogram:
					ref.add(rHistogram, m.Name(), m.ExponentialHistogram().DataPoints().Len())
				case pmetric.MetricTypeSummary:
					ref.add(rUnsupported, m.Name(), m.Summary().DataPoints().Len())
				default:
					ref.add(rUnsupported, m.Name(), 1)
				}
			}
		}
	}
	return it, ref
}

// checkPoint returns the value and the time (Unix nanoseconds) of a Sum point, or counts its
// refusal in ref and returns false: a value that is not a number, NaN, infinite, negative or above
// 2^53 (maxDelta), or a
// time outside [p.oldest, p.newest].
func (p *parser) checkPoint(dp pmetric.NumberDataPoint, metric string, ref *refusals) (float64, int64, bool) {
	var v float64
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		v = float64(dp.IntValue())
	case pmetric.NumberDataPointValueTypeDouble:
		v = dp.DoubleValue()
	default:
		ref.add(rUnsupported, metric, 1)
		return 0, 0, false
	}
	switch {
	case math.IsNaN(v):
		ref.add(rNaN, metric, 1)
		return 0, 0, false
	case math.IsInf(v, 0):
		ref.add(rInf, metric, 1)
		return 0, 0, false
	case v < 0:
		ref.add(rNegative, metric, 1)
		return 0, 0, false
	case v > maxDelta:
		ref.add(rTooLarge, metric, 1)
		return 0, 0, false
	}
	ts := int64(dp.Timestamp())
	switch {
	case ts < p.oldest:
		ref.add(rTooOld, metric, 1)
		return 0, 0, false
	case ts > p.newest:
		ref.add(rFuture, metric, 1)
		return 0, 0, false
	}
	return v, ts, true
}

// begin prepares p for one request parsed at now, whose points may be up to longest old, and takes
// the series cache's read lock until end.
func (p *parser) begin(now time.Time, longest time.Duration) {
	p.now = now
	p.oldest = now.Add(-longest).UnixNano()
	p.newest = now.Add(conventions.MaxFuture).UnixNano()
	p.rep = repairs{}
	clear(p.interned)
	p.stream.scope.ok = false
	if p.cache != nil {
		p.cache.mu.RLock()
	}
}

// end releases what begin took.
func (p *parser) end() {
	if p.cache != nil {
		p.cache.mu.RUnlock()
	}
}

// readResource returns the service.name of res and keeps its other kept attributes in p.resKVs.
func (p *parser) readResource(res pcommon.Resource) string {
	service := ""
	p.resKVs = p.resKVs[:0]
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		if k == conventions.ServiceName {
			service = p.rep.text(v.AsString(), maxStringBytes)
		} else if p.keep[k] {
			p.resKVs = append(p.resKVs, kv{k, v})
		}
		return true
	})
	return service
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// newItem returns an empty item for a request of about n points.
func (p *parser) newItem(n int) *item {
	it := &item{rows: make(map[aggKey]float64), lookups: make(map[string]string), done: make(chan struct{})}
	if p.cache != nil {
		it.known = make([]knownRow, 0, n)
	}
	return it
}

// count adds one accepted point (or event) of value v at ts (Unix nanoseconds) to it. A point of a
// cached series costs its lookup key in a reused buffer and one map read; the canonical identity
// and its string are built only when the cache misses. The caller holds p.cache.mu's read lock
// when p.cache is set.
func (p *parser) count(it *item, metric, service string, attrs pcommon.Map, ts int64, v float64) {
	minute := floorDiv(ts, int64(time.Minute))
	it.points++
	id, identity := p.seriesOf(it, metric, service, attrs)
	if identity == "" {
		it.known = append(it.known, knownRow{id, minute, v})
		return
	}
	it.rows[aggKey{identity, minute}] += v
}

// seriesOf finds the series of a point: its id when the series cache knows it, else its canonical
// identity (interned), whose lookup key it records in it.lookups for the flush to cache. The caller
// holds p.cache.mu's read lock when p.cache is set.
func (p *parser) seriesOf(it *item, metric, service string, attrs pcommon.Map) (id int64, identity string) {
	var lookup []byte
	if p.cache != nil {
		lookup = p.lookupBytes(metric, service, attrs)
		if id, ok := p.cache.byLookup[string(lookup)]; ok {
			return id, ""
		}
	}
	identity = p.intern(p.identityBytes(metric, service, attrs))
	if lookup != nil {
		if _, ok := it.lookups[identity]; !ok {
			it.lookups[identity] = string(lookup)
		}
	}
	return 0, identity
}

// lookupBytes builds the lookup key of a series in p.lookup and returns it; the bytes are valid
// until the next call. It holds the metric, the service, the kept resource attributes and the
// point's attributes in the order the request has them, each length-prefixed and typed: the same
// series always gets the same key from the same sender, and two series never share one. (A series
// whose attributes come in another order gets a second key for the same id.)
func (p *parser) lookupBytes(metric, service string, attrs pcommon.Map) []byte {
	b := identity.AppendHead(p.lookup[:0], metric, service)
	b = binary.AppendUvarint(b, uint64(len(p.resKVs)))
	for _, e := range p.resKVs {
		b = appendLookupKV(b, e.key, e.val)
	}
	for k, v := range attrs.All() {
		b = appendLookupKV(b, k, v)
	}
	p.lookup = b
	return b
}

func appendLookupKV(b []byte, k string, v pcommon.Value) []byte {
	return identity.AppendKV(b, k, v, scratchJSON)
}

// scratchJSON is the JSON form of a value for a lookup key; what it repairs is counted when the
// identity is built.
func scratchJSON(b []byte, v pcommon.Value) []byte {
	var scratch repairs
	return scratch.jsonValue(b, v)
}

// intern returns b as a string, one string per distinct identity in the current request.
func (p *parser) intern(b []byte) string {
	if s, ok := p.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	p.interned[s] = s
	return s
}

// identityBytes builds the canonical identity of a series in p.buf and returns it; the bytes are
// valid until the next call. The identity is uvarint(len(metric)) metric uvarint(len(service))
// service attributes-as-JSON, with the kept resource attributes and the point's attributes merged
// (the point wins), keys sorted.
func (p *parser) identityBytes(metric, service string, attrs pcommon.Map) []byte {
	// The metric name is repaired here, on a cache miss, rather than per point: a cached series was
	// looked up by its raw name. (service is repaired once per resource, by readResource.)
	b := identity.AppendHead(p.buf[:0], p.rep.text(metric, maxNameBytes), service)
	p.kvs = append(p.kvs[:0], p.resKVs...)
	attrs.Range(func(k string, v pcommon.Value) bool {
		p.kvs = append(p.kvs, kv{k, v})
		return true
	})
	if !slices.IsSortedFunc(p.kvs, cmpKV) {
		slices.SortStableFunc(p.kvs, cmpKV)
	}
	b = append(b, '{')
	first := true
	for i, e := range p.kvs {
		if i+1 < len(p.kvs) && p.kvs[i+1].key == e.key {
			continue // a later entry with the same key (the point's) wins
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = p.rep.jsonString(b, e.key, maxKeyBytes)
		b = append(b, ':')
		b = p.rep.jsonValue(b, e.val)
	}
	b = append(b, '}')
	p.buf = b
	return b
}

func cmpKV(a, b kv) int { return strings.Compare(a.key, b.key) }
