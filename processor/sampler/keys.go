package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/trackhq/track/internal/conventions"
)

// Attribute keys the processor writes itself. They are never scrubbed, hashed or counted against
// validation.max_attributes.
const (
	adjustedCountKey = conventions.AdjustedCount
	overflowKey      = conventions.Overflow
)

// keyAction is what the processor does with an attribute, decided from its key alone.
type keyAction uint8

const (
	actKeep       keyAction = iota // keep; scrub and truncate the value
	actReserved                    // one of the processor's own keys: leave untouched
	actHash                        // replace the value by its keyed hash
	actDeny                        // remove: on the deny list
	actNotAllowed                  // remove: not on the allow list (allow mode)
	actLocation                    // remove: finer than a region (location coarsening)
)

func (a keyAction) removes() bool { return a == actDeny || a == actNotAllowed || a == actLocation }

// maxCachedKeys bounds the key decision cache, so a flood of unique keys cannot grow memory.
const maxCachedKeys = 4096

// keyPolicy decides what happens to an attribute from its key. It is safe for concurrent use.
type keyPolicy struct {
	hashKeys     map[string]struct{}
	scrub        bool
	allowMode    bool
	deny         wordMatcher
	allow        keySet
	location     bool
	locationDrop wordMatcher
	locationKeep keySet
	longValues   map[string]struct{}

	// cache holds decisions already taken; it is replaced, never mutated, so reads need no lock.
	cache atomic.Pointer[map[string]keyInfo]
	mu    sync.Mutex // serializes cache writers
}

func newKeyPolicy(cfg *Config) *keyPolicy {
	p := &keyPolicy{hashKeys: map[string]struct{}{}, longValues: map[string]struct{}{}}
	if cfg.Hashing.Enabled {
		for _, k := range cfg.Hashing.Keys {
			p.hashKeys[k] = struct{}{}
		}
	}
	for _, k := range cfg.Validation.LongValueKeys {
		p.longValues[k] = struct{}{}
	}
	if cfg.Location.Enabled {
		p.location = true
		p.locationDrop = newWordMatcher(append(append([]string(nil), cfg.Location.DropKeys...), cfg.Location.ExtraDropKeys...))
		p.locationKeep = newKeySet(cfg.Location.KeepKeys)
	}
	if cfg.Scrub.Enabled {
		p.scrub = true
		p.allowMode = cfg.Scrub.Mode == ScrubModeAllow
		p.deny = newWordMatcher(append(append([]string(nil), cfg.Scrub.DenyKeys...), cfg.Scrub.ExtraDenyKeys...))
		p.allow = newKeySet(cfg.Scrub.AllowKeys)
	}
	empty := map[string]keyInfo{}
	p.cache.Store(&empty)
	return p
}

// keyInfo is what is known about a key: the decision, whether its value may be long
// (validation.long_value_keys), whether the key itself must be repaired before it is stored
// (keyNeedsRepair), and the key's hash for attribute-set hashing.
type keyInfo struct {
	act  keyAction
	long bool
	bad  bool
	hash uint64
}

// action returns the decision for key.
func (p *keyPolicy) action(key string) keyAction {
	return p.info(key).act
}

// info returns the decision for key and its hash.
func (p *keyPolicy) info(key string) keyInfo {
	if ki, ok := (*p.cache.Load())[key]; ok {
		return ki
	}
	_, long := p.longValues[key]
	ki := keyInfo{act: p.decide(key), long: long, bad: keyNeedsRepair(key), hash: keyHash(key)}
	p.remember(key, ki)
	return ki
}

func (p *keyPolicy) remember(key string, a keyInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.cache.Load()
	if len(old) >= maxCachedKeys {
		return
	}
	if _, ok := old[key]; ok {
		return
	}
	next := make(map[string]keyInfo, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[strings.Clone(key)] = a
	p.cache.Store(&next)
}

func (p *keyPolicy) decide(key string) keyAction {
	if key == adjustedCountKey || key == overflowKey {
		return actReserved
	}
	if _, ok := p.hashKeys[key]; ok {
		return actHash
	}
	// Location coarsening comes before the scrub mode, so that an allow list such as "geo.*"
	// cannot let a city through.
	if p.location && p.locationDrop.match(key) && !p.locationKeep.contains(key) {
		return actLocation
	}
	if !p.scrub {
		return actKeep
	}
	if p.allowMode {
		if p.allow.contains(key) {
			return actKeep
		}
		return actNotAllowed
	}
	if p.deny.match(key) {
		return actDeny
	}
	return actKeep
}

// locationNested reports whether key, found in a map nested under the key parent (a map body or a
// map attribute value), is removed by location coarsening when read as "parent.key": it catches
// {"geo": {"location": ...}} and {"location": {"lat": ...}}. It is safe for concurrent use.
func (p *keyPolicy) locationNested(parent, key string) bool {
	if !p.location || parent == "" || !p.locationDrop.matchJoined(parent, key) {
		return false
	}
	return !p.locationKeep.contains(parent + "." + key)
}

// keySet holds exact keys and prefixes (entries ending in "*"). It is safe for concurrent use once
// built.
type keySet struct {
	exact    map[string]struct{}
	prefixes []string
}

func newKeySet(entries []string) keySet {
	ks := keySet{exact: map[string]struct{}{}}
	for _, k := range entries {
		if prefix, ok := strings.CutSuffix(k, "*"); ok {
			ks.prefixes = append(ks.prefixes, prefix)
		} else {
			ks.exact[k] = struct{}{}
		}
	}
	return ks
}

// contains reports whether key is one of the exact keys or starts with one of the prefixes.
func (ks *keySet) contains(key string) bool {
	if _, ok := ks.exact[key]; ok {
		return true
	}
	for _, prefix := range ks.prefixes {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// wordMatcher matches keys against entries made of words: an entry matches when its words appear as
// consecutive words of the key. Words are split at every byte that is not an ASCII letter or digit
// and before an upper-case letter that follows a lower-case letter or digit; they compare
// case-insensitively. It is safe for concurrent use once built.
type wordMatcher struct {
	entries  map[string]struct{} // normalized entries: words joined by '_'
	maxWords int
}

func newWordMatcher(entries []string) wordMatcher {
	m := wordMatcher{entries: map[string]struct{}{}}
	for _, e := range entries {
		n := normalizeKey(e)
		if len(n) == 0 {
			continue
		}
		m.entries[string(n)] = struct{}{}
		if w := strings.Count(string(n), "_") + 1; w > m.maxWords {
			m.maxWords = w
		}
	}
	return m
}

// normalizeKey returns key with its words lower-cased and joined by '_'.
func normalizeKey(key string) []byte {
	return appendNormalized(nil, key)
}

func appendNormalized(dst []byte, key string) []byte {
	start := len(dst)
	sep := false
	prevLower := false
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			if sep && len(dst) > start {
				dst = append(dst, '_')
			}
			sep, prevLower = false, true
			dst = append(dst, c)
		case 'A' <= c && c <= 'Z':
			if (sep || prevLower) && len(dst) > start {
				dst = append(dst, '_')
			}
			sep, prevLower = false, false
			dst = append(dst, c+('a'-'A'))
		default:
			sep, prevLower = true, false
		}
	}
	return dst
}

// match reports whether key contains an entry's words. It does not allocate for keys up to 128
// bytes.
func (m *wordMatcher) match(key string) bool {
	if len(m.entries) == 0 {
		return false
	}
	var arr [160]byte
	return m.matchNormalized(appendNormalized(arr[:0], key))
}

// matchJoined reports whether the key parent.key contains an entry's words, without building it.
func (m *wordMatcher) matchJoined(parent, key string) bool {
	if len(m.entries) == 0 {
		return false
	}
	var arr [160]byte
	buf := appendNormalized(arr[:0], parent)
	n := len(buf)
	if n > 0 {
		buf = append(buf, '_')
	}
	buf = appendNormalized(buf, key)
	if len(buf) == n+1 {
		buf = buf[:n]
	}
	return m.matchNormalized(buf)
}

// matchNormalized reports whether the normalized key buf contains an entry's words.
func (m *wordMatcher) matchNormalized(buf []byte) bool {
	var startsArr [32]int
	starts := startsArr[:0]
	starts = append(starts, 0)
	for i, c := range buf {
		if c == '_' {
			starts = append(starts, i+1)
		}
	}
	for i, st := range starts {
		for w := 1; w <= m.maxWords && i+w-1 < len(starts); w++ {
			end := len(buf)
			if i+w < len(starts) {
				end = starts[i+w] - 1
			}
			if _, ok := m.entries[string(buf[st:end])]; ok {
				return true
			}
		}
	}
	return false
}
