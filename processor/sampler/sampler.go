package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor"

	"github.com/trackhq/track/processor/sampler/internal/cardinality"
	"github.com/trackhq/track/processor/sampler/internal/hashing"
	"github.com/trackhq/track/processor/sampler/internal/metadata"
	"github.com/trackhq/track/processor/sampler/internal/sampling"
	"github.com/trackhq/track/processor/sampler/internal/scrub"
	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// sampler holds the processor's state shared by its metrics and logs pipelines' calls. It is safe
// for concurrent use.
type sampler struct {
	validate         bool
	maxAttrs         int
	maxValueLen      int
	maxLongValueLen  int
	maxNestedLen     int // bodies and values nested in maps and slices
	requireEventName bool
	maxFuture        time.Duration
	maxAge           time.Duration

	keys        *keyPolicy
	scrub       *scrub.Scrubber // nil when scrubbing is off
	scrubBodies bool
	hasher      *hashing.Hasher      // nil when hashing is off
	card        *cardinality.Tracker // nil when the cap is off

	logSampling    bool
	logRules       *sampling.RuleSet
	logBy          SampleBy
	logAttr        string
	metricSampling bool
	metricRules    *sampling.RuleSet

	tel  *telemetry
	tb   *metadata.TelemetryBuilder
	now  func() time.Time
	rand func() uint64 // uniform 64-bit values; must be safe for concurrent use
}

func newSampler(set processor.Settings, cfg *Config) (*sampler, error) {
	s := &sampler{
		validate:         cfg.Validation.Enabled,
		maxAttrs:         cfg.Validation.MaxAttributes,
		maxValueLen:      cfg.Validation.MaxValueLength,
		maxLongValueLen:  cfg.Validation.MaxLongValueLength,
		requireEventName: cfg.Validation.RequireEventName,
		maxFuture:        cfg.Validation.MaxFuture,
		maxAge:           cfg.Validation.MaxAge,
		keys:             newKeyPolicy(cfg),
		logSampling:      cfg.Sampling.Logs.Enabled,
		logBy:            cfg.Sampling.Logs.By,
		logAttr:          cfg.Sampling.Logs.Attribute,
		metricSampling:   cfg.Sampling.Metrics.Enabled,
		now:              time.Now,
		rand:             rand.Uint64,
	}
	if s.validate {
		s.maxValueLen = validate.BoundLen(s.maxValueLen, validate.MaxIndexedValueLen)
		s.maxLongValueLen = validate.BoundLen(s.maxLongValueLen, validate.MaxFieldLen)
		s.maxNestedLen = validate.MaxFieldLen
	} else {
		s.maxAttrs, s.maxValueLen, s.maxLongValueLen = 0, 0, 0
	}
	if cfg.Scrub.Enabled {
		sc, err := scrub.New(&cfg.Scrub)
		if err != nil {
			return nil, fmt.Errorf("scrub.custom_patterns: %w", err)
		}
		s.scrub = sc
		s.scrubBodies = cfg.Scrub.Bodies
	}
	if cfg.Hashing.Enabled {
		s.hasher = hashing.New([]byte(cfg.Hashing.Key), cfg.Hashing.Length)
	}
	if cfg.Cardinality.Enabled {
		s.card = cardinality.New(&cfg.Cardinality)
	}
	s.logRules = sampling.NewRuleSet(cfg.Sampling.Logs.Probability, cfg.Sampling.Logs.Rules)
	s.metricRules = sampling.NewRuleSet(cfg.Sampling.Metrics.Probability, cfg.Sampling.Metrics.Rules)

	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	s.tb = tb
	var custom []string
	if s.scrub != nil {
		custom = s.scrub.CustomNames()
	}
	refusals := &refusalLog{logger: set.Logger, now: func() time.Time { return s.now() }}
	s.tel = newTelemetry(tb, custom, refusals)
	return s, nil
}

func (s *sampler) shutdown(context.Context) error {
	s.tb.Shutdown()
	return nil
}

// processAttrs applies the key policy (deny list, allow list, location coarsening), hashing, value
// scrubbing, repair and truncation (when top: m is a top-level attribute map) and, when limit > 0,
// the attribute count limit to m. It returns an order-independent hash of the resulting attribute
// set, used by the cardinality cap. parent is the key m is nested under ("" for attribute maps and
// bodies), for location coarsening; depth is the depth of m's values (1 for an attribute map). A
// map that needs no change is not written to.
//
// While validating, keys are checked as they are visited (keyCheck). A key that needs repair is
// decided on, and its value processed, as its repaired form, which is what is stored; once the
// visit is over, repairKeys renames such keys and removes repeated ones, and the attribute-set hash
// is computed again. Maps of more than validate.MaxGuardedKeys entries are repaired before the visit.
//
// Each key's action is decided once, in the visit, which records the positions to remove (a bit
// each) and how many go for each reason; removeAttrs decides again only where the bits cannot say:
// in a map that needed key repair (its keys have moved) and for a position past the 64th.
func (s *sampler) processAttrs(m pcommon.Map, limit int, top bool, parent string, depth int, c *counts) uint64 {
	if m.Len() == 0 {
		return 0
	}
	check := s.validate
	if check && m.Len() > validate.MaxGuardedKeys {
		validate.RepairKeys(m, 0, &c.Counts)
		check = false
	}
	// Points of one metric usually repeat the same keys in the same order: for top-level maps, a
	// per-position memo answers most key lookups, and most key checks, with one string comparison.
	memo := top
	kc := newKeyCheck(check, memo, depth, c)
	verified := kc.verified() // keys matching the memo before this position need no check
	maxLen, maxLong := s.valueLen(top, false), s.valueLen(top, true)
	var sum uint64
	kept := 0
	// The visit's closure must stay small enough to be inlined into Range: it records removals in
	// two plain variables.
	var drops uint64                   // bit i: remove the attribute at position i (i < 64)
	var removedBy [numKeyActions]int64 // removals by action; actKeep stands for the count limit
	pos := 0
	m.Range(func(k string, v pcommon.Value) bool {
		var ki keyInfo
		hit := false
		if memo && pos < len(c.memo) && c.memo[pos].key == k {
			ki, hit = c.memo[pos].info, true
		} else {
			ki = s.keys.info(k)
			if memo && pos < len(c.memo) {
				c.memo[pos] = keyMemo{key: k, info: ki}
			}
		}
		if !hit || pos >= verified {
			verified = 0 // the memo vouches for no key after the first it did not vouch for
			if kc.check(ki, pos) && ki.bad {
				ki = s.keys.info(validate.StoredKey(k)) // decide as stored; RepairKeys counts the repair
			}
		}
		pos++
		a := ki.act
		if a == actKeep && parent != "" && s.keys.locationNested(parent, k) {
			a = actLocation
		}
		if a.removes() {
			drops |= 1 << (pos - 1)
			removedBy[a]++
			return true
		}
		if a != actReserved {
			kept++
			if limit > 0 && kept > limit {
				drops |= 1 << (pos - 1)
				removedBy[actKeep]++
				return true
			}
		}
		// The value's type is read once: a type switch on the value's oneof is a memory load that
		// misses the cache on most points.
		t := v.Type()
		if t == pcommon.ValueTypeStr && a != actHash { // the common case, inline
			ml := maxLen
			if ki.long {
				ml = maxLong
			}
			sum += cardinality.StrPairHash(ki.hash, s.scrubStr(v, ml, c))
			return true
		}
		if t <= pcommon.ValueTypeBool && a != actHash {
			sum += s.numberPairHash(v, t, ki.hash, c)
			return true
		}
		sum += s.processValue(k, v, t, ki, a, top, depth, c)
		return true
	})
	if kc.repair {
		validate.RepairKeys(m, 0, &c.Counts)
		s.removeAttrs(m, limit, parent, c)
		if memo {
			c.memoOK = 0
		}
		return attrSetHash(m)
	}
	if memo {
		// The memo now holds this map's first keys, all storable and distinct.
		c.memoOK = min(pos, len(c.memo))
	}
	// Comparing removedBy costs a memequal call: only maps past 64 attributes need it.
	if drops != 0 || pos > 64 && removedBy != [numKeyActions]int64{} {
		s.applyDrops(m, drops, &removedBy, limit, parent, c)
	}
	return sum
}

// applyDrops removes the attributes of m at the positions set in drops and counts them by
// removedBy (see processAttrs). When a removal lies past the 64th position, which drops cannot
// hold, removeAttrs decides on m instead.
func (s *sampler) applyDrops(m pcommon.Map, drops uint64, removedBy *[numKeyActions]int64, limit int, parent string, c *counts) {
	var n int64
	for _, k := range removedBy {
		n += k
	}
	if n != int64(bits.OnesCount64(drops)) {
		s.removeAttrs(m, limit, parent, c)
		return
	}
	pos := 0
	m.RemoveIf(func(string, pcommon.Value) bool {
		drop := pos < 64 && drops&(1<<pos) != 0
		pos++
		return drop
	})
	for a, k := range removedBy {
		if k > 0 {
			c.Removed[keyAction(a).reason()] += k
		}
	}
}

// removeAttrs removes the attributes of m that the key policy removes (deny list, allow list,
// location) and those past limit (when limit > 0), and counts them. It decides on the keys of m as
// they are: processAttrs calls it only on a map whose keys were repaired after its visit.
func (s *sampler) removeAttrs(m pcommon.Map, limit int, parent string, c *counts) {
	kept := 0
	m.RemoveIf(func(k string, _ pcommon.Value) bool {
		a := s.keys.action(k)
		if a == actKeep && parent != "" && s.keys.locationNested(parent, k) {
			a = actLocation
		}
		switch {
		case a.removes():
			c.Removed[a.reason()]++
			return true
		case a == actReserved:
			return false
		}
		kept++
		if limit > 0 && kept > limit {
			c.Removed[tally.RemoveCountLimit]++
			return true
		}
		return false
	})
}

// attrSetHash returns the order-independent hash of the attribute set m (see processAttrs).
func attrSetHash(m pcommon.Map) uint64 {
	var sum uint64
	m.Range(func(k string, v pcommon.Value) bool {
		sum += cardinality.TypedPairHash(cardinality.KeyHash(k), v, v.Type())
		return true
	})
	return sum
}

// numberPairHash scrubs v, an empty, integer, double or bool value of type t, and returns its
// pair hash with the key hash hk. The common small numbers cost one comparison
// (scrubber.scrubNonString).
func (s *sampler) numberPairHash(v pcommon.Value, t pcommon.ValueType, hk uint64, c *counts) uint64 {
	if s.scrub != nil && (t == pcommon.ValueTypeInt && s.scrub.MayMatchInt(v.Int()) ||
		t == pcommon.ValueTypeDouble && s.scrub.MayMatchDouble(v.Double())) {
		s.scrub.ScrubNonString(v, &c.Counts)
		t = v.Type()
	}
	return cardinality.TypedPairHash(hk, v, t)
}

// valueLen returns the length bound of a value of a top-level map (top) or of a nested one; long
// says its key is one of validation.long_value_keys.
func (s *sampler) valueLen(top, long bool) int {
	switch {
	case !top:
		return s.maxNestedLen
	case long:
		return s.maxLongValueLen
	}
	return s.maxValueLen
}

// processValue hashes, scrubs, repairs and truncates the value v, of type t, of the attribute k
// (see processAttrs), whose key decision is a, and returns the pair's hash for the attribute-set
// hash.
func (s *sampler) processValue(k string, v pcommon.Value, t pcommon.ValueType, ki keyInfo, a keyAction, top bool, depth int, c *counts) uint64 {
	switch a {
	case actHash:
		if s.hasher.HashValue(v) {
			c.Hashed++
			t = pcommon.ValueTypeStr
		} else if s.validate {
			validate.RepairValue(v, s.maxValueLen, depth, &c.Counts)
		}
	case actKeep, actReserved:
		// The processor's own keys are not removed, but a sender may set them: their values are
		// scrubbed and repaired like any other.
		maxLen := s.valueLen(top, ki.long)
		switch t {
		case pcommon.ValueTypeStr:
			return cardinality.StrPairHash(ki.hash, s.scrubStr(v, maxLen, c))
		case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool, pcommon.ValueTypeEmpty:
			return s.numberPairHash(v, t, ki.hash, c)
		}
		s.scrubValue(v, k, depth, c)
		s.truncate(v, maxLen, c)
		t = v.Type()
	}
	return cardinality.TypedPairHash(ki.hash, v, t)
}

// scrubStr scrubs and (while validating) repairs a string value and truncates it to maxLen bytes
// (0: no limit), writing it only when it changes. It returns the value's new content.
func (s *sampler) scrubStr(v pcommon.Value, maxLen int, c *counts) string {
	str := v.Str()
	out, changed := str, false
	if s.scrub != nil {
		out, changed = s.scrub.ScrubRepair(str, s.validate, &c.Counts)
	} else if s.validate && validate.NeedsRepair(out) {
		out, changed = validate.RepairString(out, &c.Counts), true
	}
	if maxLen > 0 && len(out) > maxLen {
		out, changed = s.scrub.Cut(out, maxLen), true
		c.Truncated[tally.TruncValueLength]++
	}
	if changed {
		v.SetStr(out)
	}
	return out
}

// scrubValue redacts PII inside v and, while validating, makes it storable: strings are repaired,
// matched against the patterns and bounded by maxNestedLen; integers, integral doubles and bytes
// are checked for card numbers and custom patterns; maps are processed like attributes (deny list,
// location, hashing, key repair), slices element by element, and maps and slices at maxDepth are
// emptied. key is the key v is found under ("" for a body); depth is the depth of v.
func (s *sampler) scrubValue(v pcommon.Value, key string, depth int, c *counts) {
	if s.scrub == nil && s.keys.location == nil && !s.validate {
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s.scrubStr(v, s.maxNestedLen, c)
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBytes:
		if s.scrub != nil {
			s.scrub.ScrubNonString(v, &c.Counts)
		}
	case pcommon.ValueTypeMap:
		if s.validate && validate.CutDeep(v, depth, &c.Counts) {
			return
		}
		s.processAttrs(v.Map(), 0, false, key, depth+1, c)
	case pcommon.ValueTypeSlice:
		if s.validate && validate.CutDeep(v, depth, &c.Counts) {
			return
		}
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			s.scrubValue(sl.At(i), key, depth+1, c)
		}
	}
}

// truncate shortens string and bytes values longer than maxLen bytes (0: no limit), as
// scrubber.cut does.
func (s *sampler) truncate(v pcommon.Value, maxLen int, c *counts) {
	if maxLen <= 0 {
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if str := v.Str(); len(str) > maxLen {
			v.SetStr(s.scrub.Cut(str, maxLen))
			c.Truncated[tally.TruncValueLength]++
		}
	case pcommon.ValueTypeBytes:
		if b := v.Bytes(); b.Len() > maxLen {
			cut := []byte(s.scrub.DropCardTail(string(b.AsRaw()[:maxLen])))
			b.FromRaw(cut)
			c.Truncated[tally.TruncValueLength]++
		}
	}
}
