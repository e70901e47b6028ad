package tally // import "github.com/trackhq/track/processor/sampler/internal/tally"

// Signal is the kind of data a batch holds.
type Signal uint8

// The signals the sampler processes.
const (
	SignalMetrics Signal = iota
	SignalLogs
	NumSignals
)

// SignalNames are the otel.signal attribute values of the signals.
var SignalNames = [NumSignals]string{"metrics", "logs"}

// DropReason says why a data point or log record was refused.
type DropReason uint8

// The drop reasons.
const (
	DropInvalidMetricName DropReason = iota
	DropInvalidValue
	DropMissingEventName
	DropTimestampInFuture
	DropTimestampTooOld
	DropCardinalityLimit
	DropInvalidEventName
	DropTimestampMissing
	DropTimestampInvalid
	NumDropReasons
)

// DropReasonNames are the reason attribute values of the drop reasons.
var DropReasonNames = [NumDropReasons]string{
	"invalid_metric_name", "invalid_value", "missing_event_name",
	"timestamp_in_future", "timestamp_too_old", "cardinality_limit",
	"invalid_event_name", "timestamp_missing", "timestamp_invalid",
}

// RemoveReason says why an attribute was removed.
type RemoveReason uint8

// The remove reasons.
const (
	RemoveDenyList RemoveReason = iota
	RemoveNotAllowed
	RemoveCountLimit
	RemoveLocation
	RemoveDuplicateKey
	RemoveInvalidKey
	NumRemoveReasons
)

// RemoveReasonNames are the reason attribute values of the remove reasons.
var RemoveReasonNames = [NumRemoveReasons]string{
	"deny_list", "not_allowed", "count_limit", "location", "duplicate_key", "invalid_key",
}

// Pattern identifies a built-in redaction pattern.
type Pattern uint8

// The built-in patterns.
const (
	PatEmail Pattern = iota
	PatCard
	PatToken
	PatIP
	NumPatterns
)

// PatternNames are the reason attribute values of the patterns.
var PatternNames = [NumPatterns]string{"email", "card", "token", "ip"}

// TruncReason says why a value or a key was cut.
type TruncReason uint8

// The truncation reasons.
const (
	TruncValueLength TruncReason = iota
	TruncKeyLength
	TruncNestingDepth
	NumTruncReasons
)

// TruncReasonNames are the reason attribute values of the truncation reasons.
var TruncReasonNames = [NumTruncReasons]string{"value_length", "key_length", "nesting_depth"}

// RepairReason says why a string was rewritten to be storable.
type RepairReason uint8

// The repair reasons.
const (
	RepairNUL RepairReason = iota
	RepairInvalidUTF8
	NumRepairReasons
)

// RepairReasonNames are the reason attribute values of the repair reasons.
var RepairReasonNames = [NumRepairReasons]string{"nul", "invalid_utf8"}

// Counts accumulates one batch's decisions, so the hot loop touches plain integers and the
// telemetry instruments are called once per batch. It is not safe for concurrent use.
type Counts struct {
	Dropped    [NumDropReasons]int64
	DropNames  [NumDropReasons]string // the first metric or event name dropped for each reason
	SampledOut int64
	Overflow   int64
	Removed    [NumRemoveReasons]int64
	Redacted   [NumPatterns]int64
	Custom     []int64 // redactions per custom pattern, by the pattern's index
	Hashed     int64
	Truncated  [NumTruncReasons]int64
	Repaired   [NumRepairReasons]int64
}

// Drop counts n items dropped for reason r, and remembers name when it is the first for r.
func (c *Counts) Drop(r DropReason, name string, n int64) {
	if c.Dropped[r] == 0 {
		c.DropNames[r] = name
	}
	c.Dropped[r] += n
}

// AddCustom counts n redactions by the custom pattern with index i.
func (c *Counts) AddCustom(i int, n int64) {
	for len(c.Custom) <= i {
		c.Custom = append(c.Custom, 0)
	}
	c.Custom[i] += n
}
