package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/trackhq/track/internal/conventions"
)

// Config is the configuration of the sampler processor. Every stage has an enabled switch; all are
// on by default except metric sampling and IP address redaction. A Config is not safe for
// concurrent mutation; the processor copies what it needs when it is created.
type Config struct {
	// Validation drops malformed metrics and log records and bounds attributes.
	Validation ValidationConfig `mapstructure:"validation"`
	// Scrub removes secret and PII attribute keys and redacts PII found in values and log bodies.
	Scrub ScrubConfig `mapstructure:"scrub"`
	// Hashing replaces identifier attributes (user ids) by a keyed hash.
	Hashing HashingConfig `mapstructure:"hashing"`
	// Location coarsens locations: it removes attributes finer than a region (city, postal code,
	// coordinates), so that country and region are what remains.
	Location LocationConfig `mapstructure:"location"`
	// Cardinality caps the number of distinct attribute sets per metric and window.
	Cardinality CardinalityConfig `mapstructure:"cardinality"`
	// Sampling samples log records and, optionally, metric points without biasing totals.
	Sampling SamplingConfig `mapstructure:"sampling"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ValidationConfig configures the validation stage.
type ValidationConfig struct {
	// Enabled turns the validation stage on (default true).
	Enabled bool `mapstructure:"enabled"`
	// MaxAttributes is the largest number of attributes kept on a data point or log record
	// (default 32). Attributes past the limit, in the order they arrive, are removed and counted.
	// 0 means no limit.
	MaxAttributes int `mapstructure:"max_attributes"`
	// MaxValueLength is the longest string or bytes attribute value, in bytes (default 256, at most
	// 2048). Longer values are truncated at a UTF-8 boundary and counted. 0 means the storage bound
	// alone (2048 bytes, which keeps a value within a Postgres btree index entry).
	MaxValueLength int `mapstructure:"max_value_length"`
	// RequireEventName drops log records that carry no event name (default true).
	RequireEventName bool `mapstructure:"require_event_name"`
	// MaxFuture drops log records whose timestamp is further than this in the future (default 1h).
	// 0 means no limit.
	MaxFuture time.Duration `mapstructure:"max_future"`
	// MaxAge drops log records older than this (default 2160h, the 90-day event retention of the
	// storage). 0 means no limit.
	MaxAge time.Duration `mapstructure:"max_age"`
	// LongValueKeys are attribute keys (exact match) whose values are limited by
	// MaxLongValueLength instead of MaxValueLength: stack traces and error messages, which are
	// useless once cut (default exception.stacktrace, exception.message).
	LongValueKeys []string `mapstructure:"long_value_keys"`
	// MaxLongValueLength is the longest value of a LongValueKeys attribute, in bytes
	// (default 16384, at most 1048576). Longer values are truncated at a UTF-8 boundary and
	// counted. 0 means the storage bound alone (1048576 bytes).
	MaxLongValueLength int `mapstructure:"max_long_value_length"`
}

// ScrubMode selects how attribute keys are filtered.
type ScrubMode string

const (
	// ScrubModeDeny removes the keys on the deny list and keeps every other key.
	ScrubModeDeny ScrubMode = "deny"
	// ScrubModeAllow keeps only the keys on the allow list (plus the hashed identifier keys).
	ScrubModeAllow ScrubMode = "allow"
)

// ScrubConfig configures the scrubbing stage.
type ScrubConfig struct {
	// Enabled turns the scrubbing stage on (default true).
	Enabled bool `mapstructure:"enabled"`
	// Mode is "deny" (default: remove keys on deny_keys) or "allow" (keep only keys on allow_keys).
	Mode ScrubMode `mapstructure:"mode"`
	// DenyKeys are removed in deny mode. An entry matches a key when its words (split at ".", "_",
	// "-" and camelCase, compared case-insensitively) appear as consecutive words of the key:
	// "password" matches "db.password" and "userPassword", "api_key" matches "x-api-key". Setting
	// it replaces the default list; use ExtraDenyKeys to extend it.
	DenyKeys []string `mapstructure:"deny_keys"`
	// ExtraDenyKeys are added to DenyKeys.
	ExtraDenyKeys []string `mapstructure:"extra_deny_keys"`
	// AllowKeys are the only keys kept in allow mode: exact keys, or prefixes ending in "*".
	AllowKeys []string `mapstructure:"allow_keys"`
	// Patterns selects the built-in value patterns redacted in attribute values and log bodies.
	Patterns PatternsConfig `mapstructure:"patterns"`
	// CustomPatterns are extra regular expressions (RE2 syntax) whose matches are redacted.
	CustomPatterns []CustomPattern `mapstructure:"custom_patterns"`
	// Bodies scrubs log bodies too, including multi-line stack traces (default true).
	Bodies bool `mapstructure:"bodies"`
}

// PatternsConfig switches the built-in value patterns.
type PatternsConfig struct {
	// Email redacts email addresses (default true).
	Email bool `mapstructure:"email"`
	// CardNumber redacts payment card numbers: 13 to 19 digits, optionally separated by single
	// spaces or dashes, that pass the Luhn check (default true).
	CardNumber bool `mapstructure:"card_number"`
	// Token redacts bearer tokens and JWTs (default true).
	Token bool `mapstructure:"token"`
	// IP redacts IPv4 and IPv6 addresses (default false).
	IP bool `mapstructure:"ip"`
}

// CustomPattern is one extra redaction regex.
type CustomPattern struct {
	// Name labels the pattern in the replacement text ("[REDACTED:<name>]") and in telemetry.
	Name string `mapstructure:"name"`
	// Regex is an RE2 regular expression; each match is replaced.
	Regex string `mapstructure:"regex"`
}

// HashingConfig configures keyed hashing of identifiers.
type HashingConfig struct {
	// Enabled turns hashing on (default true). While it is on, Key must be set.
	Enabled bool `mapstructure:"enabled"`
	// Keys are the attribute keys whose values are hashed (default user.id, enduser.id); exact match.
	Keys []string `mapstructure:"keys"`
	// Key is the HMAC-SHA256 secret, at least 16 bytes. Every collector instance must use the same
	// key so that a user hashes to the same value everywhere. There is no default.
	Key configopaque.String `mapstructure:"key"`
	// Length is the number of hex characters kept from the hash (default 32, from 16 to 64).
	Length int `mapstructure:"length"`
}

// LocationConfig configures location coarsening. Attributes whose key matches DropKeys and not
// KeepKeys are removed from resources, scopes, data points, log records and map bodies, so that a
// location is known to its region at most. The default list keeps geo.country.iso_code and
// geo.region.iso_code and removes cities, postal codes and coordinates.
type LocationConfig struct {
	// Enabled turns location coarsening on (default true).
	Enabled bool `mapstructure:"enabled"`
	// DropKeys are removed. An entry matches a key as scrub.deny_keys entries do: when its words
	// appear as consecutive words of the key, so "locality" matches "geo.locality.name" and
	// "client.geo.locality.name", and "geo.location" matches "geo.location.lat". Setting it
	// replaces the default list; use ExtraDropKeys to extend it.
	DropKeys []string `mapstructure:"drop_keys"`
	// ExtraDropKeys are added to DropKeys.
	ExtraDropKeys []string `mapstructure:"extra_drop_keys"`
	// KeepKeys are never removed by location coarsening, even when DropKeys match them: exact
	// keys, or prefixes ending in "*" (for example [geo.locality.name] keeps the city). They remain
	// subject to scrubbing.
	KeepKeys []string `mapstructure:"keep_keys"`
}

// CardinalityConfig configures the cardinality cap.
type CardinalityConfig struct {
	// Enabled turns the cap on (default true).
	Enabled bool `mapstructure:"enabled"`
	// MaxSeries is the largest number of distinct point attribute sets per metric name and
	// window (default 1000).
	MaxSeries int `mapstructure:"max_series"`
	// Window is the length of the window, aligned to the wall clock (default 1h).
	Window time.Duration `mapstructure:"window"`
	// MaxMetrics is the largest number of metric names tracked per window (default 10000). Points of
	// further names all go to their metric's overflow series.
	MaxMetrics int `mapstructure:"max_metrics"`
	// MaxTrackedSeries bounds the series tracked over all metrics per window (default 1000000);
	// once reached, new series of any metric go to overflow. It bounds the memory of the cap.
	MaxTrackedSeries int `mapstructure:"max_tracked_series"`
}

// SamplingConfig configures sampling.
type SamplingConfig struct {
	// Logs configures log record sampling.
	Logs LogSamplingConfig `mapstructure:"logs"`
	// Metrics configures metric point sampling.
	Metrics MetricSamplingConfig `mapstructure:"metrics"`
}

// SampleBy selects the value a log sampling decision is consistent on.
type SampleBy string

const (
	// SampleByAttribute decides on the value of an attribute (LogSamplingConfig.Attribute), so all
	// records of one user are kept or dropped together.
	SampleByAttribute SampleBy = "attribute"
	// SampleByTraceID decides on the trace id, so all records of one trace are kept or dropped together.
	SampleByTraceID SampleBy = "trace_id"
	// SampleByRandom decides independently for every record.
	SampleByRandom SampleBy = "random"
)

// LogSamplingConfig configures log record sampling.
type LogSamplingConfig struct {
	// Enabled turns log sampling on (default true). Kept records get sampling.adjusted_count.
	Enabled bool `mapstructure:"enabled"`
	// Probability is the keep probability for event names no rule matches, in (0,1] (default 1).
	Probability float64 `mapstructure:"probability"`
	// By is "attribute" (default), "trace_id" or "random".
	By SampleBy `mapstructure:"by"`
	// Attribute is the record attribute used when By is "attribute" (default user.id). Records
	// without it fall back to the trace id, then to random.
	Attribute string `mapstructure:"attribute"`
	// Rules set the probability per event name; the first matching rule wins.
	Rules []SamplingRule `mapstructure:"rules"`
}

// MetricSamplingConfig configures metric point sampling.
type MetricSamplingConfig struct {
	// Enabled turns metric sampling on (default false). Only delta sums and delta histograms are
	// sampled; kept values are scaled by 1/p.
	Enabled bool `mapstructure:"enabled"`
	// Probability is the keep probability for metric names no rule matches, in (0,1] (default 1).
	Probability float64 `mapstructure:"probability"`
	// Rules set the probability per metric name; the first matching rule wins.
	Rules []SamplingRule `mapstructure:"rules"`
}

// SamplingRule sets the keep probability for one event or metric name.
type SamplingRule struct {
	// Name is an exact event or metric name, or a prefix ending in "*".
	Name string `mapstructure:"name"`
	// Probability is the keep probability, in (0,1].
	Probability float64 `mapstructure:"probability"`
}

var _ component.Config = (*Config)(nil)

// minHashKeyLen is the shortest accepted HMAC key, in bytes.
const minHashKeyLen = 16

// Validate checks the configuration and names the offending key. It is called by the Collector
// before the processor is created.
func (cfg *Config) Validate() error {
	var errs []error
	v := cfg.Validation
	if v.MaxAttributes < 0 {
		errs = append(errs, errors.New("validation.max_attributes: must not be negative"))
	}
	if v.MaxValueLength < 0 {
		errs = append(errs, errors.New("validation.max_value_length: must not be negative"))
	} else if v.MaxValueLength > maxIndexedValueLen {
		errs = append(errs, fmt.Errorf("validation.max_value_length: %d is above %d bytes, the longest attribute value that stays within a Postgres btree index entry; list long attributes in validation.long_value_keys instead", v.MaxValueLength, maxIndexedValueLen))
	}
	if v.MaxFuture < 0 {
		errs = append(errs, errors.New("validation.max_future: must not be negative"))
	}
	if v.MaxAge < 0 {
		errs = append(errs, errors.New("validation.max_age: must not be negative"))
	}
	if v.MaxLongValueLength < 0 {
		errs = append(errs, errors.New("validation.max_long_value_length: must not be negative"))
	} else if v.MaxLongValueLength > maxFieldLen {
		errs = append(errs, fmt.Errorf("validation.max_long_value_length: %d is above the storage bound of %d bytes", v.MaxLongValueLength, maxFieldLen))
	}
	for i, k := range v.LongValueKeys {
		if k == "" {
			errs = append(errs, fmt.Errorf("validation.long_value_keys[%d]: must not be empty", i))
		}
	}

	s := cfg.Scrub
	switch s.Mode {
	case ScrubModeDeny, ScrubModeAllow:
	default:
		errs = append(errs, fmt.Errorf("scrub.mode: %q is not one of deny, allow", s.Mode))
	}
	errs = appendWordKeyErrs(errs, "scrub.deny_keys", s.DenyKeys)
	errs = appendWordKeyErrs(errs, "scrub.extra_deny_keys", s.ExtraDenyKeys)
	names := map[string]bool{}
	for i, p := range s.CustomPatterns {
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("scrub.custom_patterns[%d].name: must be set", i))
		} else if needsRepair(p.Name) {
			errs = append(errs, fmt.Errorf("scrub.custom_patterns[%d].name: %q is not valid UTF-8 without NUL bytes", i, p.Name))
		} else if names[p.Name] {
			errs = append(errs, fmt.Errorf("scrub.custom_patterns[%d].name: %q is used twice", i, p.Name))
		}
		names[p.Name] = true
		if p.Regex == "" {
			errs = append(errs, fmt.Errorf("scrub.custom_patterns[%d].regex: must be set", i))
		} else if _, err := regexp.Compile(p.Regex); err != nil {
			errs = append(errs, fmt.Errorf("scrub.custom_patterns[%d].regex: %w", i, err))
		}
	}

	h := cfg.Hashing
	if h.Enabled {
		if len(h.Key) < minHashKeyLen {
			errs = append(errs, fmt.Errorf("hashing.key: must be at least %d bytes while hashing.enabled is true (got %d); set it, e.g. from ${env:TRACK_SAMPLER_HASH_KEY}, or disable hashing", minHashKeyLen, len(h.Key)))
		}
		if h.Length < 16 || h.Length > 64 {
			errs = append(errs, fmt.Errorf("hashing.length: %d is outside [16, 64]", h.Length))
		}
		for i, k := range h.Keys {
			if k == "" {
				errs = append(errs, fmt.Errorf("hashing.keys[%d]: must not be empty", i))
			}
		}
	}

	loc := cfg.Location
	if loc.Enabled {
		errs = appendWordKeyErrs(errs, "location.drop_keys", loc.DropKeys)
		errs = appendWordKeyErrs(errs, "location.extra_drop_keys", loc.ExtraDropKeys)
		for i, k := range loc.KeepKeys {
			if k == "" || k == "*" {
				errs = append(errs, fmt.Errorf("location.keep_keys[%d]: %q keeps every key; disable location instead", i, k))
			} else if strings.Contains(strings.TrimSuffix(k, "*"), "*") {
				errs = append(errs, fmt.Errorf("location.keep_keys[%d]: %q may only end in \"*\"", i, k))
			}
		}
	}

	c := cfg.Cardinality
	if c.Enabled {
		if c.MaxSeries < 1 {
			errs = append(errs, fmt.Errorf("cardinality.max_series: %d must be at least 1", c.MaxSeries))
		}
		if c.Window <= 0 {
			errs = append(errs, fmt.Errorf("cardinality.window: %v must be positive", c.Window))
		}
		if c.MaxMetrics < 1 {
			errs = append(errs, fmt.Errorf("cardinality.max_metrics: %d must be at least 1", c.MaxMetrics))
		}
		if c.MaxTrackedSeries < 1 {
			errs = append(errs, fmt.Errorf("cardinality.max_tracked_series: %d must be at least 1", c.MaxTrackedSeries))
		}
	}

	l := cfg.Sampling.Logs
	if l.Enabled {
		errs = appendProbErr(errs, "sampling.logs.probability", l.Probability)
		switch l.By {
		case SampleByAttribute:
			if l.Attribute == "" {
				errs = append(errs, errors.New("sampling.logs.attribute: must be set when sampling.logs.by is attribute"))
			}
		case SampleByTraceID, SampleByRandom:
		default:
			errs = append(errs, fmt.Errorf("sampling.logs.by: %q is not one of attribute, trace_id, random", l.By))
		}
		errs = appendRuleErrs(errs, "sampling.logs.rules", l.Rules)
	}
	m := cfg.Sampling.Metrics
	if m.Enabled {
		errs = appendProbErr(errs, "sampling.metrics.probability", m.Probability)
		errs = appendRuleErrs(errs, "sampling.metrics.rules", m.Rules)
	}
	return errors.Join(errs...)
}

// appendWordKeyErrs checks the entries of a word-matched key list (deny_keys, drop_keys).
func appendWordKeyErrs(errs []error, key string, entries []string) []error {
	for i, k := range entries {
		if len(normalizeKey(k)) == 0 {
			errs = append(errs, fmt.Errorf("%s[%d]: %q has no letters or digits", key, i, k))
		}
	}
	return errs
}

func appendProbErr(errs []error, key string, p float64) []error {
	if math.IsNaN(p) || p <= 0 || p > 1 {
		return append(errs, fmt.Errorf("%s: %v is outside (0,1]", key, p))
	}
	return errs
}

func appendRuleErrs(errs []error, key string, rules []SamplingRule) []error {
	for i, r := range rules {
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s[%d].name: must be set", key, i))
		} else if strings.Contains(strings.TrimSuffix(r.Name, "*"), "*") {
			errs = append(errs, fmt.Errorf("%s[%d].name: %q may only end in \"*\"", key, i, r.Name))
		}
		errs = appendProbErr(errs, fmt.Sprintf("%s[%d].probability", key, i), r.Probability)
	}
	return errs
}

// defaultDenyKeys lists the keys removed by default: secrets, credentials and direct PII.
var defaultDenyKeys = []string{
	"password", "passwd", "pwd", "passphrase",
	"secret", "client_secret", "secret_key",
	"token", "access_token", "refresh_token", "id_token", "auth_token", "api_token",
	"authorization", "proxy_authorization", "cookie", "set_cookie",
	"api_key", "apikey", "access_key", "private_key",
	"email", "e_mail",
	"card", "card_number", "credit_card", "pan", "cvv", "cvc",
	"ssn", "social_security",
	"iban", "phone", "phone_number", "passport",
}

// defaultLocationDropKeys lists the location keys removed by default: anything finer than a region.
// They are word-matched, so each entry also covers its prefixed variants (client.geo.*,
// source.geo.*, user.*) and camelCase spellings.
var defaultLocationDropKeys = []string{
	"locality", "city", // geo.locality.name, client.geo.city_name, user.city
	"postal_code", "postcode", "zip_code", "zipcode", // geo.postal_code
	"geo.location", "coordinates", // geo.location.lat/lon, client.geo.location, geo.coordinates
	"latitude", "longitude",
	"geo.lat", "geo.lon", "geo.lng",
	"location.lat", "location.lon", "location.lng",
}

// defaultLongValueKeys lists the attributes allowed up to validation.max_long_value_length.
var defaultLongValueKeys = []string{conventions.ExceptionStacktrace, conventions.ExceptionMessage}

func createDefaultConfig() component.Config {
	return &Config{
		Validation: ValidationConfig{
			Enabled:          true,
			MaxAttributes:    32,
			MaxValueLength:   256,
			RequireEventName: true,
			MaxFuture:        conventions.MaxFuture,
			MaxAge:           90 * 24 * time.Hour,
			// A stack trace of track's 32 frames is 3-8 KiB.
			LongValueKeys:      append([]string(nil), defaultLongValueKeys...),
			MaxLongValueLength: 16384,
		},
		Scrub: ScrubConfig{
			Enabled:  true,
			Mode:     ScrubModeDeny,
			DenyKeys: append([]string(nil), defaultDenyKeys...),
			Patterns: PatternsConfig{Email: true, CardNumber: true, Token: true},
			Bodies:   true,
		},
		Hashing: HashingConfig{
			Enabled: true,
			Keys:    []string{conventions.UserID, conventions.EnduserID},
			Length:  32,
		},
		Location: LocationConfig{
			Enabled:  true,
			DropKeys: append([]string(nil), defaultLocationDropKeys...),
		},
		Cardinality: CardinalityConfig{
			Enabled:          true,
			MaxSeries:        1000,
			Window:           time.Hour,
			MaxMetrics:       10000,
			MaxTrackedSeries: 1_000_000,
		},
		Sampling: SamplingConfig{
			Logs: LogSamplingConfig{
				Enabled:     true,
				Probability: 1,
				By:          SampleByAttribute,
				Attribute:   conventions.UserID,
			},
			Metrics: MetricSamplingConfig{Probability: 1},
		},
	}
}
