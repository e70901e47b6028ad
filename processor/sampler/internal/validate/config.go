package validate // import "github.com/trackhq/track/processor/sampler/internal/validate"

import (
	"fmt"
	"time"

	"github.com/trackhq/track/internal/conventions"
)

// Config configures the validation stage.
type Config struct {
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

// DefaultLongValueKeys lists the attributes allowed up to max_long_value_length by default.
var DefaultLongValueKeys = []string{conventions.ExceptionStacktrace, conventions.ExceptionMessage}

// Default returns the default validation configuration.
func Default() Config {
	return Config{
		Enabled:          true,
		MaxAttributes:    32,
		MaxValueLength:   256,
		RequireEventName: true,
		MaxFuture:        conventions.MaxFuture,
		MaxAge:           90 * 24 * time.Hour,
		// A stack trace of track's 32 frames is 3-8 KiB.
		LongValueKeys:      append([]string(nil), DefaultLongValueKeys...),
		MaxLongValueLength: 16384,
	}
}

// Validate checks the fields of cfg, whether or not the stage is enabled, and names each
// offending field; the Collector's confmap validation puts the path of cfg in front.
func (cfg *Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"max_attributes", int64(cfg.MaxAttributes)},
		{"max_value_length", int64(cfg.MaxValueLength)},
		{"max_future", int64(cfg.MaxFuture)},
		{"max_age", int64(cfg.MaxAge)},
		{"max_long_value_length", int64(cfg.MaxLongValueLength)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", f.key))
		}
	}
	if cfg.MaxValueLength > MaxIndexedValueLen {
		errs = append(errs, fmt.Errorf("max_value_length: %d is above %d bytes, the longest attribute value that stays within a Postgres btree index entry; list long attributes in long_value_keys instead", cfg.MaxValueLength, MaxIndexedValueLen))
	}
	if cfg.MaxLongValueLength > MaxFieldLen {
		errs = append(errs, fmt.Errorf("max_long_value_length: %d is above the storage bound of %d bytes", cfg.MaxLongValueLength, MaxFieldLen))
	}
	for i, k := range cfg.LongValueKeys {
		if k == "" {
			errs = append(errs, fmt.Errorf("long_value_keys::%d: must not be empty", i))
		}
	}
	return JoinFields(errs)
}

// JoinFields joins the errors a config struct found in its own fields into one line, "; " between
// them, or returns nil when there are none. One line, because the Collector's confmap validation
// puts the struct's key path in front of the whole message: each error then reads as that path,
// the field and what is wrong. The result unwraps to errs.
func JoinFields(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fieldErrors(errs)
}

type fieldErrors []error

func (e fieldErrors) Error() string {
	s := e[0].Error()
	for _, err := range e[1:] {
		s += "; " + err.Error()
	}
	return s
}

func (e fieldErrors) Unwrap() []error { return e }
