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

// hashAttrs hashes attrs without allocating. Per-pair hashes are summed, so
// the same pairs in another order hash alike. Keys contribute only their
// length and end bytes: keys are few and fixed per call site, and a
// collision only costs an equality check. ok is false when a value is not a
// scalar (slices, maps, bytes): those take the slow path, which builds an
// attribute.Set.
func hashAttrs(attrs []attribute.KeyValue) (h uint64, ok bool) {
	if !valueLayoutKnown {
		return 0, false
	}
	for i := range attrs {
		kv := &attrs[i]
		v := rawValue(&kv.Value)
		var vh uint64
		switch {
		case v.vtype == attribute.STRING:
			vh = hashString(v.stringly)
		case v.vtype <= attribute.FLOAT64:
			vh = v.numeric ^ uint64(v.vtype)<<56
		default:
			return 0, false
		}
		h += (vh ^ keyBits(string(kv.Key))) * 0x9e3779b97f4a7c15
	}
	return mix(h), true
}

// valueMirror has attribute.Value's memory layout, so the hot path can read
// a value's fields in place instead of copying the 48-byte struct through
// its methods. valueLayoutKnown checks the layout once at start; if a future
// release changes it, every lookup takes the slow, safe path instead.
type valueMirror struct {
	vtype    attribute.Type
	numeric  uint64
	stringly string
	slice    any
}

func rawValue(v *attribute.Value) *valueMirror { return (*valueMirror)(unsafe.Pointer(v)) }

var valueLayoutKnown = func() bool {
	if unsafe.Sizeof(attribute.Value{}) != unsafe.Sizeof(valueMirror{}) {
		return false
	}
	s, i, f, b := attribute.StringValue("probe"), attribute.Int64Value(-7), attribute.Float64Value(0.5), attribute.BoolValue(true)
	rs, ri, rf, rb := rawValue(&s), rawValue(&i), rawValue(&f), rawValue(&b)
	return rs.vtype == attribute.STRING && rs.stringly == "probe" && rs.slice == nil &&
		ri.vtype == attribute.INT64 && int64(ri.numeric) == -7 && ri.stringly == "" &&
		rf.vtype == attribute.FLOAT64 && rf.numeric == math.Float64bits(0.5) &&
		rb.vtype == attribute.BOOL && rb.numeric == 1
}()

func keyBits(k string) uint64 {
	if k == "" {
		return 0
	}
	return uint64(len(k)) | uint64(k[0])<<16 | uint64(k[len(k)-1])<<24 | uint64(k[len(k)/2])<<32
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
// It is only called on scalar values, which are equal when their type, raw
// number and string are.
func sameAttrs(a, b []attribute.KeyValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := rawValue(&a[i].Value), rawValue(&b[i].Value)
		if x.vtype != y.vtype || x.numeric != y.numeric || !sameString(x.stringly, y.stringly) ||
			!sameString(string(a[i].Key), string(b[i].Key)) {
			return false
		}
	}
	return true
}

// sameString compares addresses first: literals at one call site share one.
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// hashString hashes short strings (the usual values) with two overlapping
// word loads, and longer ones with maphash. The result only needs to be
// stable within the process.
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
