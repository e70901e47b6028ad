package scrub // import "github.com/trackhq/track/processor/sampler/internal/scrub"

import "strings"

// KeySet holds exact keys and prefixes (entries ending in "*"). It is safe for concurrent use once
// built.
type KeySet struct {
	exact    map[string]struct{}
	prefixes []string
}

func NewKeySet(entries []string) KeySet {
	ks := KeySet{exact: map[string]struct{}{}}
	for _, k := range entries {
		if prefix, ok := strings.CutSuffix(k, "*"); ok {
			ks.prefixes = append(ks.prefixes, prefix)
		} else {
			ks.exact[k] = struct{}{}
		}
	}
	return ks
}

// Contains reports whether key is one of the exact keys or starts with one of the prefixes.
func (ks *KeySet) Contains(key string) bool {
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

// WordMatcher matches keys against entries made of words: an entry matches when its words appear as
// consecutive words of the key. Words are split at every byte that is not an ASCII letter or digit
// and before an upper-case letter that follows a lower-case letter or digit; they compare
// case-insensitively. It is safe for concurrent use once built.
type WordMatcher struct {
	entries  map[string]struct{} // normalized entries: words joined by '_'
	maxWords int
}

func NewWordMatcher(entries []string) WordMatcher {
	m := WordMatcher{entries: map[string]struct{}{}}
	for _, e := range entries {
		n := NormalizeKey(e)
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

// NormalizeKey returns key with its words lower-cased and joined by '_'.
func NormalizeKey(key string) []byte {
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

// Match reports whether key contains an entry's words. It does not allocate for keys up to 128
// bytes.
func (m *WordMatcher) Match(key string) bool {
	if len(m.entries) == 0 {
		return false
	}
	var arr [160]byte
	return m.matchNormalized(appendNormalized(arr[:0], key))
}

// MatchJoined reports whether the key parent.key contains an entry's words, without building it.
func (m *WordMatcher) MatchJoined(parent, key string) bool {
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
func (m *WordMatcher) matchNormalized(buf []byte) bool {
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
