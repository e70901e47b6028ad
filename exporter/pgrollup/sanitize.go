package pgrollup

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trackhq/track/internal/conventions"
)

// Every string the exporter writes to Postgres passes through this file first, so that a pipeline
// without the sampler is safe too: Postgres refuses a NUL byte in text (SQLSTATE 22021) and in jsonb
// (\u0000, 22P05), and invalid UTF-8 in a UTF-8 database (22021). One such value would fail the
// whole flush transaction, and with it every request of the round. The repairs happen while a
// request is parsed, into new strings: the pushed pdata is never changed, so the request's
// idempotency key (requestkey.go), computed from the request as received, stays the same on a
// replay. A clean string costs one scan and no allocation.

// The repairs of strings, as indexes into repairNames, whose values are the `reason` attribute of
// the exporter_pgrollup_values_repaired telemetry metric.
const (
	repNUL         = iota // a NUL byte replaced by U+FFFD
	repInvalidUTF8        // a byte that is not valid UTF-8 replaced by U+FFFD
	repTruncated          // a string cut to its bound (at a rune boundary)
	repTooDeep            // a list or map nested deeper than maxDepth replaced by a placeholder
	numRepairs
)

var repairNames = [numRepairs]string{"nul", "invalid_utf8", "truncated", "too_deep"}

// Bounds of the values written to Postgres. A btree index entry holds at most 2,704 bytes
// (Postgres' "index row size exceeds btree version 4 maximum", SQLSTATE 54000); the indexed text
// columns are series.metric and total_*.metric (metric and event names), events.name and
// events.user_id.
const (
	// maxNameBytes bounds metric and event names. A longer name is refused (it names a series: a
	// cut name could merge two), reason name_too_long.
	maxNameBytes = 1024
	// maxKeyBytes bounds attribute keys and the indexed user_id; longer ones are cut.
	maxKeyBytes = 1024
	// maxStringBytes bounds every other string: attribute values at any depth, service, page,
	// country, region, bodies and stack traces. Longer ones are cut.
	maxStringBytes = 64 << 10
	// maxDepth bounds the nesting of list and map attribute values; a value nested deeper is replaced
	// by tooDeepValue. The sampler empties values at the same bound.
	maxDepth = conventions.MaxNesting
	// maxDelta bounds a data point's value and an event's adjusted count: beyond 2^53 a double no
	// longer counts in units, and the bound keeps every sum far from the float8 overflow that
	// Postgres refuses in an upsert (SQLSTATE 22003).
	maxDelta = 1 << 53
)

// tooDeepValue stands for a list or map value nested deeper than maxDepth.
const tooDeepValue = "[nested deeper than 16 levels]"

// repairs counts the repairs made while one request is parsed.
type repairs [numRepairs]int64

// storable reports whether s can be written as it is: no NUL, valid UTF-8, at most limit bytes.
// Short strings (names, most attribute values) are checked in one pass over their bytes, which
// costs less than the calls of the vectorised checks that long strings get.
func storable(s string, limit int) bool {
	if len(s) > limit {
		return false
	}
	if len(s) <= 64 {
		ascii := true
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == 0 {
				return false
			} else if c >= utf8.RuneSelf {
				ascii = false
			}
		}
		return ascii || utf8.ValidString(s)
	}
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// text returns s ready for a text column: each NUL and each invalid byte replaced by U+FFFD, and
// cut to at most limit bytes at a rune boundary. It returns s itself when s needs no repair.
func (r *repairs) text(s string, limit int) string {
	if storable(s, limit) {
		return s
	}
	if strings.IndexByte(s, 0) >= 0 {
		r[repNUL]++
	}
	if !utf8.ValidString(s) {
		r[repInvalidUTF8]++
	}
	var b strings.Builder
	b.Grow(min(len(s), limit))
	for i := 0; i < len(s); {
		c, w := utf8.DecodeRuneInString(s[i:])
		if c == 0 || (c == utf8.RuneError && w == 1) {
			c = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(c) > limit {
			r[repTruncated]++
			break
		}
		b.WriteRune(c)
		i += w
	}
	return b.String()
}

// cut returns s cut to at most limit bytes without splitting a (valid) rune.
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// jsonString appends s as a JSON string for a jsonb column, cut to limit bytes, with NUL
// replaced by U+FFFD (jsonb refuses \u0000). Invalid UTF-8 is replaced by encoding/json, byte by
// byte, as before this file existed: the JSON of a value that was storable is unchanged, and so is
// the key of its series.
func (r *repairs) jsonString(b []byte, s string, limit int) []byte {
	if len(s) <= limit {
		plain := true
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
				plain = false
				break
			}
		}
		if plain {
			b = append(b, '"')
			b = append(b, s...)
			return append(b, '"')
		}
	}
	enc, _ := json.Marshal(r.forJSON(s, limit))
	return append(b, enc...)
}

// forJSON returns s cut to limit bytes and with NUL replaced, counting the repairs, including the
// invalid UTF-8 that encoding/json then replaces.
func (r *repairs) forJSON(s string, limit int) string {
	if len(s) > limit {
		r[repTruncated]++
		s = cut(s, limit)
	}
	if strings.IndexByte(s, 0) >= 0 {
		r[repNUL]++
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if !utf8.ValidString(s) {
		r[repInvalidUTF8]++
	}
	return s
}

// jsonValue appends an attribute value as JSON; non-finite doubles become strings, and bytes,
// lists and maps their JSON form (bytes in base64), repaired as jsonString does at any depth.
func (r *repairs) jsonValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return r.jsonString(b, v.Str(), maxStringBytes)
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return r.jsonString(b, strconv.FormatFloat(f, 'g', -1, 64), maxStringBytes)
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeEmpty:
		return append(b, "null"...)
	}
	var raw any
	if nestedStorable(v, 0) {
		raw = v.AsRaw()
	} else {
		raw = r.nested(v, 0)
	}
	enc, err := json.Marshal(raw)
	if err != nil { // a NaN or an infinity inside: the value's string form
		return r.jsonString(b, v.AsString(), maxStringBytes)
	}
	return append(b, enc...)
}

// nestedStorable reports whether a list or map value (at depth, 0 for an attribute's value) holds
// only storable keys and strings and is nested at most maxDepth deep. Bytes are stored in base64.
func nestedStorable(v pcommon.Value, depth int) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return storable(v.Str(), maxStringBytes)
	case pcommon.ValueTypeSlice:
		if depth >= maxDepth {
			return false
		}
		for _, x := range v.Slice().All() {
			if !nestedStorable(x, depth+1) {
				return false
			}
		}
	case pcommon.ValueTypeMap:
		if depth >= maxDepth {
			return false
		}
		for k, x := range v.Map().All() {
			if !storable(k, maxKeyBytes) || !nestedStorable(x, depth+1) {
				return false
			}
		}
	}
	return true
}

// nested returns the raw form of a value for encoding/json (as pcommon.Value.AsRaw), with its keys
// and strings repaired by forJSON and the lists and maps below maxDepth replaced by tooDeepValue.
func (r *repairs) nested(v pcommon.Value, depth int) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return r.forJSON(v.Str(), maxStringBytes)
	case pcommon.ValueTypeSlice, pcommon.ValueTypeMap:
		if depth >= maxDepth {
			r[repTooDeep]++
			return tooDeepValue
		}
		if v.Type() == pcommon.ValueTypeSlice {
			out := make([]any, 0, v.Slice().Len())
			for _, x := range v.Slice().All() {
				out = append(out, r.nested(x, depth+1))
			}
			return out
		}
		out := make(map[string]any, v.Map().Len())
		for k, x := range v.Map().All() {
			out[r.forJSON(k, maxKeyBytes)] = r.nested(x, depth+1)
		}
		return out
	}
	return v.AsRaw()
}

// displayName returns a metric or event name as the log shows it: at most 128 bytes, NUL and
// invalid UTF-8 replaced. It is not counted as a repair; the name stored is repaired by text.
func displayName(s string) string {
	const limit = 128
	if storable(s, limit) {
		return s
	}
	var scratch repairs
	if len(s) > limit {
		return scratch.text(cut(s, limit), limit) + "…"
	}
	return scratch.text(s, limit)
}
