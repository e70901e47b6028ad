package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/processor/sampler/internal/cardinality"
	"github.com/trackhq/track/processor/sampler/internal/location"
	"github.com/trackhq/track/processor/sampler/internal/scrub"
	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
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
	numKeyActions
)

func (a keyAction) removes() bool { return a == actDeny || a == actNotAllowed || a == actLocation }

// removeReasons are the telemetry reasons of the actions that remove an attribute; actKeep stands
// for an attribute past validation.max_attributes.
var removeReasons = [numKeyActions]tally.RemoveReason{
	actKeep:       tally.RemoveCountLimit,
	actDeny:       tally.RemoveDenyList,
	actNotAllowed: tally.RemoveNotAllowed,
	actLocation:   tally.RemoveLocation,
}

// reason returns why an action that removes an attribute (removes) removes it, and
// tally.RemoveCountLimit for actKeep.
func (a keyAction) reason() tally.RemoveReason { return removeReasons[a] }

// maxCachedKeys bounds the key decision cache, so a flood of unique keys cannot grow memory.
const maxCachedKeys = 4096

// keyPolicy decides what happens to an attribute from its key. It is safe for concurrent use.
type keyPolicy struct {
	hashKeys   map[string]struct{}
	scrub      bool
	allowMode  bool
	deny       scrub.WordMatcher
	allow      scrub.KeySet
	location   *location.Policy // nil when location coarsening is off
	longValues map[string]struct{}

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
	p.location = location.New(&cfg.Location)
	if cfg.Scrub.Enabled {
		p.scrub = true
		p.allowMode = cfg.Scrub.Mode == ScrubModeAllow
		p.deny = scrub.NewWordMatcher(append(append([]string(nil), cfg.Scrub.DenyKeys...), cfg.Scrub.ExtraDenyKeys...))
		p.allow = scrub.NewKeySet(cfg.Scrub.AllowKeys)
	}
	empty := map[string]keyInfo{}
	p.cache.Store(&empty)
	return p
}

// keyInfo is what is known about a key: the decision, whether its value may be long
// (validation.long_value_keys), whether the key itself must be repaired before it is stored
// (validate.KeyNeedsRepair), and the key's hash for attribute-set hashing.
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
	ki := keyInfo{act: p.decide(key), long: long, bad: validate.KeyNeedsRepair(key), hash: cardinality.KeyHash(key)}
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
	if p.location != nil && p.location.Drops(key) {
		return actLocation
	}
	if !p.scrub {
		return actKeep
	}
	if p.allowMode {
		if p.allow.Contains(key) {
			return actKeep
		}
		return actNotAllowed
	}
	if p.deny.Match(key) {
		return actDeny
	}
	return actKeep
}

// locationNested reports whether key, found in a map nested under the key parent (a map body or a
// map attribute value), is removed by location coarsening when read as "parent.key": it catches
// {"geo": {"location": ...}} and {"location": {"lat": ...}}. It is safe for concurrent use.
func (p *keyPolicy) locationNested(parent, key string) bool {
	return p.location != nil && p.location.DropsNested(parent, key)
}

// keyCheck decides, key by key while a map is visited, whether the map needs validate.RepairKeys: a key
// that needs repair, or that may repeat an earlier key of the map. For a top-level map whose keys
// so far are those of the last checked map (counts.memo), it costs nothing; otherwise keyGuard
// checks the keys' hashes. It is not safe for concurrent use.
type keyCheck struct {
	on     bool // validating, and the map was not repaired before the visit
	fast   bool // every key so far is the checked memo key at its position
	repair bool // a key needs repair or may repeat: validate.RepairKeys must run after the visit
	g      *validate.KeyGuard
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
// hit is only a suspicion (two keys may share a hash): validate.RepairKeys decides on the strings.
func (kc *keyCheck) check(ki keyInfo, pos int) bool {
	if !kc.on {
		return false
	}
	if kc.fast {
		// The keys before pos are the memo's: the guard learns them now.
		kc.fast = false
		for i := range min(pos, len(kc.c.memo)) {
			kc.g.Seen(kc.c.memo[i].info.hash)
		}
	}
	if ki.bad || kc.g.Seen(ki.hash) {
		kc.repair = true
		return true
	}
	return false
}
