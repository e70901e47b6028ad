package hashing // import "github.com/trackhq/track/processor/sampler/internal/hashing"

import (
	"fmt"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// Config configures keyed hashing of identifiers.
type Config struct {
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

// MinKeyLen is the shortest accepted HMAC key, in bytes.
const MinKeyLen = 16

// Default returns the default hashing configuration: on, without a key (which Validate refuses).
func Default() Config {
	return Config{
		Enabled: true,
		Keys:    []string{conventions.UserID, conventions.EnduserID},
		Length:  32,
	}
}

// Validate checks the fields of cfg while hashing is enabled and names each offending field; the
// Collector's confmap validation puts the path of cfg in front.
func (cfg *Config) Validate() error {
	if !cfg.Enabled {
		return nil
	}
	var errs []error
	if len(cfg.Key) < MinKeyLen {
		errs = append(errs, fmt.Errorf("key: must be at least %d bytes while enabled is true (got %d); set it, e.g. from ${env:TRACK_SAMPLER_HASH_KEY}, or disable hashing", MinKeyLen, len(cfg.Key)))
	}
	if cfg.Length < 16 || cfg.Length > 64 {
		errs = append(errs, fmt.Errorf("length: %d is outside [16, 64]", cfg.Length))
	}
	for i, k := range cfg.Keys {
		if k == "" {
			errs = append(errs, fmt.Errorf("keys::%d: must not be empty", i))
		}
	}
	return validate.JoinFields(errs)
}
