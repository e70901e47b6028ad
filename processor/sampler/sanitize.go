package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"math"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trackhq/track/internal/conventions"
)

// Storage bounds. The validation stage makes every string storable in Postgres (text and jsonb
// refuse NUL and invalid UTF-8) and keeps values below Postgres' limits, whatever the configured
// limits say:
//   - a btree index entry holds at most 2704 bytes on 8 KiB pages (the third of a page less the
//     tuple overhead; see nbtree's README and BTMaxItemSize). Names and identifier values end up in
//     such indexes (metric and event names, user ids), so names are bounded at 255 bytes and
//     top-level attribute values at maxIndexedValueLen;
//   - Postgres parses nested JSON recursively and refuses documents nested deeper than its stack
//     allows (max_stack_depth), so maps and slices are nested at most maxDepth deep;
//   - a text or jsonb field holds at most 1 GB (and a jsonb string 256 MB); no single string may
//     exceed maxFieldLen, even behind a receiver that accepts larger requests than the 4 MiB (gRPC)
//     and 20 MiB (HTTP) OTLP defaults.
const (
	// maxKeyLen bounds attribute keys, at any depth, in bytes.
	maxKeyLen = 256
	// maxIndexedValueLen bounds top-level attribute values (resource, scope, data point and log
	// record) other than validation.long_value_keys, in bytes.
	maxIndexedValueLen = 2048
	// maxFieldLen bounds every other string or bytes value (long values, bodies, nested values).
	maxFieldLen = 1 << 20
	// maxEventNameLen bounds event names, in bytes, like metric names (OpenTelemetry instrument
	// names are at most 255 characters).
	maxEventNameLen = conventions.MaxNameLen
	// maxDepth bounds the nesting of maps and slices: a map or slice value found at this depth
	// (an attribute value or a body is at depth 1 or 0) is replaced by an empty value.
	maxDepth = 32
	// maxRenamedKeys bounds the keys of one map whose repair changes them; further keys that need
	// repair are removed. Renaming a key costs a scan of the map.
	maxRenamedKeys = 64
	// maxGuardedKeys is the largest map whose keys are checked for duplicates while it is
	// processed, without allocating; larger maps are checked with a Go map before.
	maxGuardedKeys = 32
)

// repairReason says why a string was rewritten to be storable.
type repairReason uint8

const (
	repairNUL repairReason = iota
	repairInvalidUTF8
	numRepairReasons
)

var repairReasonNames = [numRepairReasons]string{"nul", "invalid_utf8"}

// truncReason says why a value or a key was cut.
type truncReason uint8

const (
	truncValueLength truncReason = iota
	truncKeyLength
	truncNestingDepth
	numTruncReasons
)

var truncReasonNames = [numTruncReasons]string{"value_length", "key_length", "nesting_depth"}

// needsRepair reports whether s holds a NUL byte or invalid UTF-8. A byte loop passes ASCII
// strings without NUL (names, most values); the first other byte hands over to the standard
// library's vectorised scans. It does not allocate.
func needsRepair(s string) bool {
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

// repairString returns s with each maximal run of invalid UTF-8 bytes and each NUL byte replaced
// by U+FFFD, counting each kind of repair once per string into c. Valid strings are returned as
// they are.
func repairString(s string, c *counts) string {
	if !needsRepair(s) {
		return s
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, string(utf8.RuneError))
		c.repaired[repairInvalidUTF8]++
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", string(utf8.RuneError))
		c.repaired[repairNUL]++
	}
	return s
}

// repairField repairs the string field read by get and written by set, when it needs it.
func repairField(get func() string, set func(string), c *counts) {
	if s := get(); needsRepair(s) {
		set(repairString(s, c))
	}
}

// keyNeedsRepair reports whether an attribute key must be rewritten before it is stored.
func keyNeedsRepair(k string) bool {
	return len(k) > maxKeyLen || needsRepair(k)
}

// storedKey returns the key k will be stored as (repairKey), without counting.
func storedKey(k string) string {
	k = strings.ReplaceAll(strings.ToValidUTF8(k, string(utf8.RuneError)), "\x00", string(utf8.RuneError))
	return truncateUTF8(k, maxKeyLen)
}

// repairKey returns k repaired and cut to maxKeyLen bytes, counting into c.
func repairKey(k string, c *counts) string {
	k = repairString(k, c)
	if len(k) > maxKeyLen {
		k = truncateUTF8(k, maxKeyLen)
		c.truncated[truncKeyLength]++
	}
	return k
}

// keyGuard detects a key that repeats in one map, from the keys' 64-bit hashes, without
// allocating. A hit is only a suspicion (two keys may share a hash): repairKeys decides on the
// strings. It holds up to maxGuardedKeys hashes.
type keyGuard struct {
	bloom  uint64
	n      int
	hashes [maxGuardedKeys]uint64
}

// seen records h and reports whether it was recorded before.
func (g *keyGuard) seen(h uint64) bool {
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

// reset empties g.
func (g *keyGuard) reset() {
	g.bloom, g.n = 0, 0
}

// keyCheck decides, key by key while a map is visited, whether the map needs repairKeys: a key
// that needs repair, or that may repeat an earlier key of the map. For a top-level map whose keys
// so far are those of the last checked map (counts.memo), it costs nothing; otherwise keyGuard
// checks the keys' hashes. It is not safe for concurrent use.
type keyCheck struct {
	on     bool // validating, and the map was not repaired before the visit
	fast   bool // every key so far is the checked memo key at its position
	repair bool // a key needs repair or may repeat: repairKeys must run after the visit
	g      *keyGuard
	c      *counts
}

func newKeyCheck(on, memo bool, depth int, c *counts) keyCheck {
	return keyCheck{on: on, fast: on && memo, g: c.guard(depth), c: c}
}

// verified returns how many leading keys of the map are vouched for by the memo, when they match
// it: 0 unless the map is checked against the memo.
func (kc *keyCheck) verified() int {
	if kc.fast {
		return kc.c.memoOK
	}
	return 0
}

// check reports whether the key at position pos, whose information is ki and which the memo did
// not vouch for, needs repair or may repeat an earlier key of the map, and then sets kc.repair. A
// hit is only a suspicion (two keys may share a hash): repairKeys decides on the strings.
func (kc *keyCheck) check(ki keyInfo, pos int) bool {
	if !kc.on {
		return false
	}
	if kc.fast {
		// The keys before pos are the memo's: the guard learns them now.
		kc.fast = false
		for i := range min(pos, len(kc.c.memo)) {
			kc.g.seen(kc.c.memo[i].info.hash)
		}
	}
	if ki.bad || kc.g.seen(ki.hash) {
		kc.repair = true
		return true
	}
	return false
}

// keyFix is what repairKeys does with one entry.
type keyFix uint8

const (
	fixKeep keyFix = iota
	fixRename
	fixDuplicate
	fixInvalid
)

// repairKeys makes the keys of m from position from on storable and unique. The entries before
// from are left alone: their keys must already be storable and distinct. A key that needs repair
// is rewritten (repairKey) and its entry moved to the end of the map; of entries whose keys are
// equal (after repair), the first in the map's order is kept and the others are removed and
// counted as duplicate_key. This is the order pdata's Map.Get reads, so every earlier decision
// taken on the key (hashing, sampling by attribute) saw the value that is kept. Past
// maxRenamedKeys renames in one map, further keys that need repair are removed and counted as
// invalid_key. It allocates; it runs only on maps that need it.
func repairKeys(m pcommon.Map, from int, c *counts) {
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
		if keyNeedsRepair(k) {
			rk = repairKey(k, c)
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
			c.removed[removeDuplicateKey]++
		case fixInvalid:
			c.removed[removeInvalidKey]++
		default:
			return false
		}
		return true
	})
	for j, k := range renamed {
		moved[j].MoveTo(m.PutEmpty(k))
	}
}

// checkKeys repairs the keys of m when any needs it or repeats (see repairKeys). Processing paths
// that run per data point check keys inline instead (processAttrs).
func checkKeys(m pcommon.Map, c *counts) {
	if m.Len() > maxGuardedKeys {
		repairKeys(m, 0, c)
		return
	}
	var g keyGuard
	pos, bad := 0, -1
	m.Range(func(k string, _ pcommon.Value) bool {
		if keyNeedsRepair(k) || g.seen(keyHash(k)) {
			bad = pos
			return false
		}
		pos++
		return true
	})
	if bad >= 0 {
		repairKeys(m, bad, c)
	}
}

// repairValue makes v storable without scrubbing it: strings repaired and cut to maxLen bytes
// (0: no limit), keys of maps repaired and made unique, maps and slices at maxDepth emptied.
// depth is the depth of v (an attribute value is at depth 1).
func repairValue(v pcommon.Value, maxLen, depth int, c *counts) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := v.Str()
		out := repairString(s, c)
		if maxLen > 0 && len(out) > maxLen {
			out = truncateUTF8(out, maxLen)
			c.truncated[truncValueLength]++
		}
		if len(out) != len(s) || out != s {
			v.SetStr(out)
		}
	case pcommon.ValueTypeBytes:
		truncateBytes(v, maxLen, c)
	case pcommon.ValueTypeMap:
		if cutDeep(v, depth, c) {
			return
		}
		m := v.Map()
		checkKeys(m, c)
		m.Range(func(_ string, e pcommon.Value) bool {
			repairValue(e, maxLen, depth+1, c)
			return true
		})
	case pcommon.ValueTypeSlice:
		if cutDeep(v, depth, c) {
			return
		}
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			repairValue(sl.At(i), maxLen, depth+1, c)
		}
	}
}

// repairMap repairs the keys and values of an attribute map that is not scrubbed (exemplars'
// filtered attributes).
func repairMap(m pcommon.Map, c *counts) {
	if m.Len() == 0 {
		return
	}
	checkKeys(m, c)
	m.Range(func(_ string, v pcommon.Value) bool {
		repairValue(v, maxIndexedValueLen, 1, c)
		return true
	})
}

// cutDeep empties the map or slice v when it sits at maxDepth or deeper, counts it, and reports
// whether it did.
func cutDeep(v pcommon.Value, depth int, c *counts) bool {
	if depth < maxDepth {
		return false
	}
	pcommon.NewValueEmpty().MoveTo(v)
	c.truncated[truncNestingDepth]++
	return true
}

// timestampReason returns why a timestamp ts (Unix nanoseconds) is refused at now, and false when
// it is accepted. A zero timestamp is missing; one past math.MaxInt64 reads as before 1970 (or
// after 2262) wherever timestamps are signed, as in Go's time package and in Postgres; maxFuture
// (0: no limit) bounds how far ahead of now it may be.
func timestampReason(ts, now uint64, maxFuture uint64) (dropReason, bool) {
	switch {
	case ts == 0:
		return dropTimestampMissing, true
	case ts > math.MaxInt64:
		return dropTimestampInvalid, true
	case maxFuture > 0 && ts > now && ts-now > maxFuture:
		return dropTimestampInFuture, true
	}
	return 0, false
}
