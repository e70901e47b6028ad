package requestkey

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/zeebo/xxh3"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// A request's idempotency key is a 128-bit XXH3 hash of the whole request, so that a retried
// request, a request replayed by a persistent queue and a request re-sent by a client all get the
// same key, while two requests that differ in any field (an instance id that the series identity
// drops, a timestamp, a value) get different ones. XXH3 is not a cryptographic hash: someone who
// can send requests could craft one that collides with another's key and so suppress it, but such
// a sender can already send any counts it likes. Accidental collisions are ~2^-128 per pair.
//
// Keys must stay the same across collector versions for as long as a persistent queue may replay
// requests written by an older version: TestRequestKeyStable pins them.
//
// Metrics requests made only of Sums, which is what pgrollup counts, are hashed from a canonical
// encoding written straight from pdata (no protobuf marshalling, no allocation); any other request
// is hashed from its deterministic protobuf encoding. Each encoding has its own prefix, so the two
// never produce the same input.
const (
	keyPrefixSums    = "pgrollup-sums\x00"
	keyPrefixMetrics = "pgrollup-metrics-proto\x00"
	keyPrefixLogs    = "pgrollup-logs-proto\x00"
)

// keyChunk is how many encoded bytes accumulate before they are fed to the hash.
const keyChunk = 4096

// keyEncoder streams a canonical encoding into an XXH3-128 hasher through a small buffer. It is
// not safe for concurrent use; keyEncoders are pooled.
type keyEncoder struct {
	h   *xxh3.Hasher
	buf []byte
}

var keyEncoders = sync.Pool{New: func() any {
	return &keyEncoder{h: xxh3.New(), buf: make([]byte, 0, keyChunk+256)}
}}

// Metrics returns the idempotency key of a metrics request. The error is the protobuf encoder's, for a request that is not only Sums. It is safe for concurrent use.
func Metrics(md pmetric.Metrics) ([16]byte, error) {
	if !onlySums(md) {
		var m pmetric.ProtoMarshaler
		b, err := m.MarshalMetrics(md)
		if err != nil {
			return [16]byte{}, fmt.Errorf("encoding the request for its key: %w", err)
		}
		return hashEncoded(keyPrefixMetrics, b), nil
	}
	e := keyEncoders.Get().(*keyEncoder)
	defer keyEncoders.Put(e)
	e.h.Reset()
	e.buf = append(e.buf[:0], keyPrefixSums...)
	e.sums(md)
	return e.digest(), nil
}

// Logs returns the idempotency key of a logs request; it never equals a metrics request's key. It is safe for concurrent use.
func Logs(ld plog.Logs) ([16]byte, error) {
	var m plog.ProtoMarshaler
	b, err := m.MarshalLogs(ld)
	if err != nil {
		return [16]byte{}, fmt.Errorf("encoding the request for its key: %w", err)
	}
	return hashEncoded(keyPrefixLogs, b), nil
}

func hashEncoded(prefix string, b []byte) [16]byte {
	h := xxh3.New()
	_, _ = h.WriteString(prefix)
	_, _ = h.Write(b)
	return h.Sum128().Bytes()
}

// onlySums reports whether every metric of md is a Sum.
func onlySums(md pmetric.Metrics) bool {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Type() != pmetric.MetricTypeSum {
					return false
				}
			}
		}
	}
	return true
}

// sums encodes every field of a request made only of Sums. Every list and string is preceded by
// its length and every value by its type, so that the encoding of two different requests differs.
func (e *keyEncoder) sums(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	e.uint(uint64(rms.Len()))
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		e.attributes(rm.Resource().Attributes())
		e.uint(uint64(rm.Resource().DroppedAttributesCount()))
		e.string(rm.SchemaUrl())
		sms := rm.ScopeMetrics()
		e.uint(uint64(sms.Len()))
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			scope := sm.Scope()
			e.string(scope.Name())
			e.string(scope.Version())
			e.attributes(scope.Attributes())
			e.uint(uint64(scope.DroppedAttributesCount()))
			e.string(sm.SchemaUrl())
			ms := sm.Metrics()
			e.uint(uint64(ms.Len()))
			for k := 0; k < ms.Len(); k++ {
				e.sumMetric(ms.At(k))
			}
		}
	}
}

// sumMetric encodes one Sum metric.
func (e *keyEncoder) sumMetric(m pmetric.Metric) {
	e.string(m.Name())
	e.string(m.Description())
	e.string(m.Unit())
	e.attributes(m.Metadata())
	s := m.Sum()
	e.uint(uint64(s.AggregationTemporality()))
	e.bool(s.IsMonotonic())
	dps := s.DataPoints()
	e.uint(uint64(dps.Len()))
	for d := 0; d < dps.Len(); d++ {
		e.spill()
		dp := dps.At(d)
		e.attributes(dp.Attributes())
		e.uint(uint64(dp.StartTimestamp()))
		e.uint(uint64(dp.Timestamp()))
		e.uint(uint64(dp.ValueType()))
		switch dp.ValueType() {
		case pmetric.NumberDataPointValueTypeInt:
			e.uint(uint64(dp.IntValue()))
		case pmetric.NumberDataPointValueTypeDouble:
			e.uint(math.Float64bits(dp.DoubleValue()))
		}
		e.uint(uint64(dp.Flags()))
		exs := dp.Exemplars()
		e.uint(uint64(exs.Len()))
		for x := 0; x < exs.Len(); x++ {
			ex := exs.At(x)
			e.attributes(ex.FilteredAttributes())
			e.uint(uint64(ex.Timestamp()))
			e.uint(uint64(ex.ValueType()))
			switch ex.ValueType() {
			case pmetric.ExemplarValueTypeInt:
				e.uint(uint64(ex.IntValue()))
			case pmetric.ExemplarValueTypeDouble:
				e.uint(math.Float64bits(ex.DoubleValue()))
			}
			trace, span := ex.TraceID(), ex.SpanID()
			e.bytes(trace[:])
			e.bytes(span[:])
		}
	}
}

func (e *keyEncoder) attributes(m pcommon.Map) {
	e.uint(uint64(m.Len()))
	for k, v := range m.All() {
		e.string(k)
		e.value(v)
		e.spill()
	}
}

func (e *keyEncoder) value(v pcommon.Value) {
	e.uint(uint64(v.Type()))
	switch v.Type() {
	case pcommon.ValueTypeStr:
		e.string(v.Str())
	case pcommon.ValueTypeInt:
		e.uint(uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		e.uint(math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		e.bool(v.Bool())
	case pcommon.ValueTypeBytes:
		e.bytes(v.Bytes().AsRaw())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		e.uint(uint64(s.Len()))
		for _, x := range s.All() {
			e.value(x)
			e.spill()
		}
	case pcommon.ValueTypeMap:
		e.attributes(v.Map())
	}
}

func (e *keyEncoder) uint(u uint64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, u)
}

func (e *keyEncoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

func (e *keyEncoder) string(s string) { appendBytes(e, s) }

func (e *keyEncoder) bytes(b []byte) { appendBytes(e, b) }

// appendBytes encodes a length-prefixed string or byte string; long ones (rare) go to the hash
// directly rather than being copied.
func appendBytes[S string | []byte](e *keyEncoder, s S) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(len(s)))
	if len(s) > 256 {
		e.write()
		_, _ = e.h.Write([]byte(s))
		return
	}
	e.buf = append(e.buf, s...)
}

// spill feeds the buffer to the hash once it holds a chunk. It is called between points and
// between attributes, not per field: the buffer may run past a chunk by one attribute or point.
func (e *keyEncoder) spill() {
	if len(e.buf) >= keyChunk {
		e.write()
	}
}

func (e *keyEncoder) write() {
	_, _ = e.h.Write(e.buf)
	e.buf = e.buf[:0]
}

// digest feeds what is left and returns the key.
func (e *keyEncoder) digest() [16]byte {
	e.write()
	return e.h.Sum128().Bytes()
}
