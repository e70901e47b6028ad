package hashing // import "github.com/trackhq/track/processor/sampler/internal/hashing"

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Hasher replaces identifiers by a truncated, hex-encoded HMAC-SHA256. It is safe for concurrent use.
type Hasher struct {
	length int
	pool   sync.Pool // of *hmacState
}

type hmacState struct {
	mac hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// New returns a Hasher with the HMAC key key that keeps length hex characters of each hash.
func New(key []byte, length int) *Hasher {
	k := append([]byte(nil), key...)
	h := &Hasher{length: length}
	h.pool.New = func() any { return &hmacState{mac: hmac.New(sha256.New, k)} }
	return h
}

// sum returns the truncated hex HMAC of b, or of s when b is nil.
func (h *Hasher) sum(b []byte, s string) string {
	st := h.pool.Get().(*hmacState)
	if b == nil {
		st.in = append(st.in[:0], s...)
		b = st.in
	}
	st.mac.Reset()
	st.mac.Write(b)
	sum := st.mac.Sum(st.sum[:0])
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum)
	if cap(st.in) > 1024 {
		st.in = nil
	}
	h.pool.Put(st)
	return string(out[:h.length])
}

// HashValue replaces v by the hash of its string form, and reports whether it did. Empty values are
// left alone, so "no user" stays distinguishable.
func (h *Hasher) HashValue(v pcommon.Value) bool {
	var out string
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		return false
	case pcommon.ValueTypeStr:
		s := v.Str()
		if s == "" {
			return false
		}
		out = h.sum(nil, s)
	case pcommon.ValueTypeInt:
		var buf [24]byte
		out = h.sum(strconv.AppendInt(buf[:0], v.Int(), 10), "")
	case pcommon.ValueTypeBytes:
		out = h.sum(append([]byte{}, v.Bytes().AsRaw()...), "")
	default:
		out = h.sum(nil, v.AsString())
	}
	v.SetStr(out)
	return true
}
