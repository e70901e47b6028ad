package conventions

import (
	"errors"
	"fmt"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Attribute keys from the OpenTelemetry semantic conventions (semconv v1.43.0).
const (
	// ServiceName is the resource attribute that names a service; rollup series keep it.
	ServiceName = string(semconv.ServiceNameKey)
	// ServiceInstanceID is the resource attribute that tells the copies of a service apart.
	ServiceInstanceID = string(semconv.ServiceInstanceIDKey)
	// URLPath is the page of an event.
	URLPath = string(semconv.URLPathKey)
	// UserID is the user of an event; the sampler replaces its value by a keyed hash.
	UserID = string(semconv.UserIDKey)
	// EnduserID is the older key for the user, hashed like UserID.
	EnduserID = "enduser.id"
	// GeoCountry is the ISO 3166-1 alpha-2 country code of an event's location.
	GeoCountry = string(semconv.GeoCountryISOCodeKey)
	// GeoRegion is the ISO 3166-2 subdivision code of an event's location.
	GeoRegion = string(semconv.GeoRegionISOCodeKey)
	// GeoLocality is a city; the sampler removes it (location is kept to country and region).
	GeoLocality = string(semconv.GeoLocalityNameKey)
	// ExceptionType is the type of an error event.
	ExceptionType = string(semconv.ExceptionTypeKey)
	// ExceptionMessage is the message of an error event.
	ExceptionMessage = string(semconv.ExceptionMessageKey)
	// ExceptionStacktrace is the stack trace of an error event.
	ExceptionStacktrace = string(semconv.ExceptionStacktraceKey)
)

// Attribute keys of our own, where the semantic conventions have none.
const (
	// ClickTarget is what a click event clicked: the value of a data-track mark, or a name given in code.
	ClickTarget = "click.target"
	// ScrollDepth is how far down the page a scroll event reached, in percent (25, 50, 75, 100).
	ScrollDepth = "scroll.depth"
	// AdjustedCount is how many items a sampled item stands for (1/p for a keep probability p).
	// It follows the OpenTelemetry probability sampling specification's "adjusted count"
	// (https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/).
	AdjustedCount = "sampling.adjusted_count"
	// Overflow marks the series into which attribute sets beyond a cardinality limit fold; it is
	// the key the OpenTelemetry metrics SDK specification uses for the same purpose
	// (https://opentelemetry.io/docs/specs/otel/metrics/sdk/#cardinality-limits).
	Overflow = "otel.metric.overflow"
	// Heartbeat is the metric of a track process's heartbeat: an export interval with nothing to send
	// still sends one monotonic delta sum point of this name, value 0 and no attributes, with the
	// process's resource, so that a process that counts nothing shows as alive. It is a data point
	// because the collector's OTLP receiver drops a request that carries none. It counts nothing
	// and is not meant to be stored as a rollup series.
	Heartbeat = "track.heartbeat"
)

// MaxNameLen is the longest instrument name, in bytes, by the OpenTelemetry API specification.
const MaxNameLen = 255

// MaxNesting is how many levels of maps and lists an attribute value may hold (a map of maps is 2): the
// sampler empties deeper values and pgrollup, safe on its own behind any other collector, replaces them,
// both counted. Postgres parses nested jsonb recursively within max_stack_depth, far deeper than this; the
// bound keeps one point's cost small and is the same in both components, so what the sampler passes
// pgrollup stores as it is.
const MaxNesting = 16

// MaxFuture is how far ahead of the receiving collector's clock a point or event may be. Senders'
// clocks drift; a time further ahead is a bug or hostile, and would sit in a bucket that is not
// complete for hours.
const MaxFuture = time.Hour

// ErrInvalidName reports a name that does not follow the instrument-name syntax.
var ErrInvalidName = errors.New("invalid name")

// ValidateName reports whether name follows the OpenTelemetry instrument-name syntax
// (https://opentelemetry.io/docs/specs/otel/metrics/api/#instrument-name-syntax): an ASCII letter,
// then at most 254 ASCII letters, digits, '_', '.', '-' or '/'. The error wraps ErrInvalidName and
// says what is wrong. It does not allocate for a valid name.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q... is longer than %d bytes", ErrInvalidName, name[:32], MaxNameLen)
	}
	if !isLetter(name[0]) {
		return fmt.Errorf("%w: %q must start with an ASCII letter", ErrInvalidName, name)
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !nameByte(c) {
			return fmt.Errorf("%w: %q has %q at byte %d; allowed are ASCII letters, digits, '_', '.', '-' and '/'",
				ErrInvalidName, name, c, i)
		}
	}
	return nil
}

// ValidName is ValidateName without the error: the check for hot paths.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen || !isLetter(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !nameByte(name[i]) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func nameByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/'
}

// ValidIdentifier reports whether s is a lowercase SQL identifier that needs no quoting in Postgres
// (a letter or '_', then at most 62 letters, digits or '_': NAMEDATALEN − 1 bytes). Schema and role
// names from configuration and flags are checked with it before they are written into SQL.
func ValidIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 63 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
