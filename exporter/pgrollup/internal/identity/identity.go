package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// AppendHead appends uvarint(len(metric)) metric uvarint(len(service)) service to b: the start of
// both the canonical identity and the lookup key.
func AppendHead(b []byte, metric, service string) []byte {
	b = binary.AppendUvarint(b, uint64(len(metric)))
	b = append(b, metric...)
	b = binary.AppendUvarint(b, uint64(len(service)))
	return append(b, service...)
}

// AppendKV appends one attribute of a lookup key to b: the key, length-prefixed, then the value's
// type and the value (strings length-prefixed, numbers in 8 bytes, booleans in one; other types
// length-prefixed in the JSON form that jsonValue appends, as in the identity). Two different
// attributes never append the same bytes, and neither do two different sequences of them.
func AppendKV(b []byte, k string, v pcommon.Value, jsonValue func([]byte, pcommon.Value) []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(k)))
	b = append(b, k...)
	t := v.Type()
	b = append(b, byte(t))
	switch t {
	case pcommon.ValueTypeStr:
		s := v.Str()
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	case pcommon.ValueTypeInt:
		return binary.LittleEndian.AppendUint64(b, uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(b, 1)
		}
		return append(b, 0)
	default: // empty, bytes, slices and maps
		j := jsonValue(nil, v)
		b = binary.AppendUvarint(b, uint64(len(j)))
		return append(b, j...)
	}
}

// Split returns the metric, service and attributes JSON of a canonical identity. It does not
// allocate; the results share id's memory.
func Split(id string) (metric, service, attrs string) {
	n, w := binary.Uvarint([]byte(id[:min(len(id), binary.MaxVarintLen64)]))
	id = id[w:]
	metric, id = id[:n], id[n:]
	n, w = binary.Uvarint([]byte(id[:min(len(id), binary.MaxVarintLen64)]))
	id = id[w:]
	service, attrs = id[:n], id[n:]
	return metric, service, attrs
}

// Key returns the stable 128-bit key of a canonical identity, stored in the series table: the
// first 16 bytes of its SHA-256.
func Key(id string) [16]byte {
	sum := sha256.Sum256([]byte(id))
	var k [16]byte
	copy(k[:], sum[:16])
	return k
}
