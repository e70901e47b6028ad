package track

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
)

type attributeSet = attribute.Set

var attrSeed = maphash.MakeSeed()

// hashAttrs hashes attrs without allocating. The per-pair hashes are summed,
// so the same pairs in another order hash alike and find their series on the
// fast path. ok is false when a value is not a scalar (slices, maps, bytes):
// those take the slow path, which builds an attribute.Set.
func hashAttrs(attrs []attribute.KeyValue) (h uint64, ok bool) {
	for i := range attrs {
		kv := &attrs[i]
		k := hashString(string(kv.Key))
		var v uint64
		switch kv.Value.Type() {
		case attribute.STRING:
			v = hashString(kv.Value.AsString())
		case attribute.INT64:
			v = uint64(kv.Value.AsInt64())
		case attribute.FLOAT64:
			v = math.Float64bits(kv.Value.AsFloat64())
		case attribute.BOOL:
			v = 1
			if kv.Value.AsBool() {
				v = 2
			}
		default:
			return 0, false
		}
		h += mix(k ^ bits.RotateLeft64(v, 31)*0x9e3779b97f4a7c15 + uint64(kv.Value.Type()))
	}
	return h, true
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// sameAttrs reports whether a and b hold the same pairs in the same order.
// It is only called on scalar values, whose Value structs compare with ==.
func sameAttrs(a, b []attribute.KeyValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// hashString hashes short strings (the usual keys and values) with two
// overlapping word loads, and longer ones with maphash. The result only
// needs to be stable within the process.
func hashString(s string) uint64 {
	n := len(s)
	if n > 16 {
		return maphash.String(attrSeed, s)
	}
	b := unsafe.Slice(unsafe.StringData(s), n)
	var lo, hi uint64
	switch {
	case n >= 8:
		lo = binary.LittleEndian.Uint64(b)
		hi = binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		lo = uint64(binary.LittleEndian.Uint32(b))
		hi = uint64(binary.LittleEndian.Uint32(b[n-4:]))
	case n > 0:
		lo = uint64(b[0])<<16 | uint64(b[n/2])<<8 | uint64(b[n-1])
	}
	return lo ^ bits.RotateLeft64(hi, 29) ^ uint64(n)*0xbf58476d1ce4e5b9
}
