package validate // import "github.com/trackhq/track/processor/sampler/internal/validate"

import (
	"hash/maphash"
	"math"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trackhq/track/processor/sampler/internal/tally"

	"github.com/trackhq/track/internal/conventions"
)

// Storage bounds. The validation stage makes every string storable in Postgres (text and jsonb
// refuse NUL and invalid UTF-8) and keeps values below Postgres' limits, whatever the configured
// limits say:
//   - a btree index entry holds at most 2704 bytes on 8 KiB pages (the third of a page less the
//     tuple overhead; see nbtree's README and BTMaxItemSize). Names and identifier values end up in
//     such indexes (metric and event names, user ids), so names are bounded at 255 bytes and
//     top-level attribute values at MaxIndexedValueLen;
//   - Postgres parses nested JSON recursively and refuses documents nested deeper than its stack
//     allows (max_stack_depth), so maps and slices are nested at most MaxDepth deep;
//   - a text or jsonb field holds at most 1 GB (and a jsonb string 256 MB); no single string may
//     exceed MaxFieldLen, even behind a receiver that accepts larger requests than the 4 MiB (gRPC)
//     and 20 MiB (HTTP) OTLP defaults.
const (
	// MaxKeyLen bounds attribute keys, at any depth, in bytes.
	MaxKeyLen = 256
	// MaxIndexedValueLen bounds top-level attribute values (resource, scope, data point and log
	// record) other than validation.long_value_keys, in bytes.
	MaxIndexedValueLen = 2048
	// MaxFieldLen bounds every other string or bytes value (long values, bodies, nested values).
	MaxFieldLen = 1 << 20
	// MaxEventNameLen bounds event names, in bytes, like metric names (OpenTelemetry instrument
	// names are at most 255 characters).
	MaxEventNameLen = conventions.MaxNameLen
	// MaxDepth bounds the nesting of maps and slices: a map or slice value found at this depth
	// (an attribute value or a body is at depth 1 or 0) is replaced by an empty value, so an
	// attribute value holds at most conventions.MaxNesting levels, as pgrollup stores them.
	MaxDepth = conventions.MaxNesting + 1
	// maxRenamedKeys bounds the keys of one map whose repair changes them; further keys that need
	// repair are removed. Renaming a key costs a scan of the map.
	maxRenamedKeys = 64
	// MaxGuardedKeys is the largest map whose keys are checked for duplicates while it is
	// processed, without allocating; larger maps are checked with a Go map before.
	MaxGuardedKeys = 32
)

// NeedsRepair reports whether s holds a NUL byte or invalid UTF-8. A byte loop passes ASCII
// strings without NUL (names, most values); the first other byte hands over to the standard
// library's vectorised scans. It does not allocate.
func NeedsRepair(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i]-1 >= utf8.RuneSelf-1 { // NUL, or part of a multi-byte or invalid sequence
			return needsRepairLong(s[i:])
		}
	}
	return false
}

func needsRepairLong(s string) bool {
	return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
}

// RepairString returns s with each maximal run of invalid UTF-8 bytes and each NUL byte replaced
// by U+FFFD, counting each kind of repair once per string into c. Valid strings are returned as
// they are.
func RepairString(s string, c *tally.Counts) string {
	if !NeedsRepair(s) {
		return s
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, string(utf8.RuneError))
		c.Repaired[tally.RepairInvalidUTF8]++
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", string(utf8.RuneError))
		c.Repaired[tally.RepairNUL]++
	}
	return s
}

// RepairField repairs the string field read by get and written by set, when it needs it.
func RepairField(get func() string, set func(string), c *tally.Counts) {
	if s := get(); NeedsRepair(s) {
		set(RepairString(s, c))
	}
}

// KeyNeedsRepair reports whether an attribute key must be rewritten before it is stored.
func KeyNeedsRepair(k string) bool {
	return len(k) > MaxKeyLen || NeedsRepair(k)
}

// StoredKey returns the key k will be stored as (RepairKey), without counting.
func StoredKey(k string) string {
	k = strings.ReplaceAll(strings.ToValidUTF8(k, string(utf8.RuneError)), "\x00", string(utf8.RuneError))
	return TruncateUTF8(k, MaxKeyLen)
}

// RepairKey returns k repaired and cut to MaxKeyLen bytes, counting into c.
func RepairKey(k string, c *tally.Counts) string {
	k = RepairString(k, c)
	if len(k) > MaxKeyLen {
		k = TruncateUTF8(k, MaxKeyLen)
		c.Truncated[tally.TruncKeyLength]++
	}
	return k
}

// KeyGuard detects a key that repeats in one map, from the keys' 64-bit hashes, without
// allocating. A hit is only a suspicion (two keys may share a hash): RepairKeys decides on the
// strings. It holds up to MaxGuardedKeys hashes.
type KeyGuard struct {
	bloom  uint64
	n      int
	hashes [MaxGuardedKeys]uint64
}

// Seen records h and reports whether it was recorded before.
func (g *KeyGuard) Seen(h uint64) bool {
	bit := uint64(1) << (h & 63)
	if g.bloom&bit != 0 {
		for _, x := range g.hashes[:g.n] {
			if x == h {
				return true
			}
		}
	}
	g.bloom |= bit
	if g.n < len(g.hashes) {
		g.hashes[g.n] = h
		g.n++
	}
	return false
}

// Reset empties g.
func (g *KeyGuard) Reset() {
	g.bloom, g.n = 0, 0
}

// keyFix is what RepairKeys does with one entry.
type keyFix uint8

const (
	fixKeep keyFix = iota
	fixRename
	fixDuplicate
	fixInvalid
)

// RepairKeys makes the keys of m from position from on storable and unique. The entries before
// from are left alone: their keys must already be storable and distinct. A key that needs repair
// is rewritten (RepairKey) and its entry moved to the end of the map; of entries whose keys are
// equal (after repair), the first in the map's order is kept and the others are removed and
// counted as duplicate_key. This is the order pdata's Map.Get reads, so every earlier decision
// taken on the key (hashing, sampling by attribute) saw the value that is kept. Past
// maxRenamedKeys renames in one map, further keys that need repair are removed and counted as
// invalid_key. It allocates; it runs only on maps that need it.
func RepairKeys(m pcommon.Map, from int, c *tally.Counts) {
	n := m.Len()
	fixes := make([]keyFix, n)
	kept := make(map[string]struct{}, n)
	var renamed []string
	i := 0
	m.Range(func(k string, _ pcommon.Value) bool {
		if i < from {
			kept[k] = struct{}{}
			i++
			return true
		}
		rk := k
		if KeyNeedsRepair(k) {
			rk = RepairKey(k, c)
		}
		switch _, dup := kept[rk]; {
		case dup:
			fixes[i] = fixDuplicate
		case rk == k:
			kept[rk] = struct{}{}
		case len(renamed) < maxRenamedKeys:
			fixes[i] = fixRename
			kept[rk] = struct{}{}
			renamed = append(renamed, rk)
		default:
			fixes[i] = fixInvalid
		}
		i++
		return true
	})
	moved := make([]pcommon.Value, 0, len(renamed))
	i = 0
	m.RemoveIf(func(_ string, v pcommon.Value) bool {
		f := fixes[i]
		i++
		switch f {
		case fixRename:
			dst := pcommon.NewValueEmpty()
			v.MoveTo(dst)
			moved = append(moved, dst)
		case fixDuplicate:
			c.Removed[tally.RemoveDuplicateKey]++
		case fixInvalid:
			c.Removed[tally.RemoveInvalidKey]++
		default:
			return false
		}
		return true
	})
	for j, k := range renamed {
		moved[j].MoveTo(m.PutEmpty(k))
	}
}

// CheckKeys repairs the keys of m when any needs it or repeats (see RepairKeys). Processing paths
// that run per data point check keys inline instead (processAttrs).
func CheckKeys(m pcommon.Map, c *tally.Counts) {
	if m.Len() > MaxGuardedKeys {
		RepairKeys(m, 0, c)
		return
	}
	var g KeyGuard
	pos, bad := 0, -1
	m.Range(func(k string, _ pcommon.Value) bool {
		if KeyNeedsRepair(k) || g.Seen(keyHash(k)) {
			bad = pos
			return false
		}
		pos++
		return true
	})
	if bad >= 0 {
		RepairKeys(m, bad, c)
	}
}

// RepairValue makes v storable without scrubbing it: strings repaired and cut to maxLen bytes
// (0: no limit), keys of maps repaired and made unique, maps and slices at MaxDepth emptied.
// depth is the depth of v (an attribute value is at depth 1).
func RepairValue(v pcommon.Value, maxLen, depth int, c *tally.Counts) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := v.Str()
		out := RepairString(s, c)
		if maxLen > 0 && len(out) > maxLen {
			out = TruncateUTF8(out, maxLen)
			c.Truncated[tally.TruncValueLength]++
		}
		if len(out) != len(s) || out != s {
			v.SetStr(out)
		}
	case pcommon.ValueTypeBytes:
		TruncateBytes(v, maxLen, c)
	case pcommon.ValueTypeMap:
		if CutDeep(v, depth, c) {
			return
		}
		m := v.Map()
		CheckKeys(m, c)
		m.Range(func(_ string, e pcommon.Value) bool {
			RepairValue(e, maxLen, depth+1, c)
			return true
		})
	case pcommon.ValueTypeSlice:
		if CutDeep(v, depth, c) {
			return
		}
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			RepairValue(sl.At(i), maxLen, depth+1, c)
		}
	}
}

// RepairMap repairs the keys and values of an attribute map that is not scrubbed (exemplars'
// filtered attributes).
func RepairMap(m pcommon.Map, c *tally.Counts) {
	if m.Len() == 0 {
		return
	}
	CheckKeys(m, c)
	m.Range(func(_ string, v pcommon.Value) bool {
		RepairValue(v, MaxIndexedValueLen, 1, c)
		return true
	})
}

// CutDeep empties the map or slice v when it sits at MaxDepth or deeper, counts it, and reports
// whether it did.
func CutDeep(v pcommon.Value, depth int, c *tally.Counts) bool {
	if depth < MaxDepth {
		return false
	}
	pcommon.NewValueEmpty().MoveTo(v)
	c.Truncated[tally.TruncNestingDepth]++
	return true
}

// TimestampReason returns why a timestamp ts (Unix nanoseconds) is refused at now, and false when
// it is accepted. A zero timestamp is missing; one past math.MaxInt64 reads as before 1970 (or
// after 2262) wherever timestamps are signed, as in Go's time package and in Postgres; maxFuture
// (0: no limit) bounds how far ahead of now it may be.
func TimestampReason(ts, now uint64, maxFuture uint64) (tally.DropReason, bool) {
	switch {
	case ts == 0:
		return tally.DropTimestampMissing, true
	case ts > math.MaxInt64:
		return tally.DropTimestampInvalid, true
	case maxFuture > 0 && ts > now && ts-now > maxFuture:
		return tally.DropTimestampInFuture, true
	}
	return 0, false
}

// TruncateBytes cuts a bytes value to maxLen bytes (0: no limit).
func TruncateBytes(v pcommon.Value, maxLen int, c *tally.Counts) {
	if b := v.Bytes(); maxLen > 0 && b.Len() > maxLen {
		b.FromRaw(append([]byte(nil), b.AsRaw()[:maxLen]...))
		c.Truncated[tally.TruncValueLength]++
	}
}

// TruncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// keySeed seeds the key hashes of KeyGuard in CheckKeys; they never leave the process.
var keySeed = maphash.MakeSeed()

func keyHash(k string) uint64 { return maphash.String(keySeed, k) }

// BoundLen returns the configured length limit n (0: none) capped at the storage bound.
func BoundLen(n, bound int) int {
	if n <= 0 || n > bound {
		return bound
	}
	return n
}
