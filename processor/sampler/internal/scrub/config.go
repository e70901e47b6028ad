package scrub // import "github.com/trackhq/track/processor/sampler/internal/scrub"

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// Mode selects how attribute keys are filtered.
type Mode string

const (
	// ModeDeny removes the keys on the deny list and keeps every other key.
	ModeDeny Mode = "deny"
	// ModeAllow keeps only the keys on the allow list (plus the hashed identifier keys).
	ModeAllow Mode = "allow"
)

// Config configures the scrubbing stage.
type Config struct {
	// Enabled turns the scrubbing stage on (default true).
	Enabled bool `mapstructure:"enabled"`
	// Mode is "deny" (default: remove keys on deny_keys) or "allow" (keep only keys on allow_keys).
	Mode Mode `mapstructure:"mode"`
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

// DefaultDenyKeys lists the keys removed by default: secrets, credentials and direct PII.
var DefaultDenyKeys = []string{
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

// Default returns the default scrubbing configuration.
func Default() Config {
	return Config{
		Enabled:  true,
		Mode:     ModeDeny,
		DenyKeys: append([]string(nil), DefaultDenyKeys...),
		Patterns: PatternsConfig{Email: true, CardNumber: true, Token: true},
		Bodies:   true,
	}
}

// Validate checks the fields of cfg, whether or not the stage is enabled, and names each offending
// field; the entries of custom_patterns check themselves (CustomPattern.Validate), except that
// their names must differ. The Collector's confmap validation puts the path of cfg in front.
func (cfg *Config) Validate() error {
	var errs []error
	switch cfg.Mode {
	case ModeDeny, ModeAllow:
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not one of deny, allow", cfg.Mode))
	}
	errs = AppendWordKeyErrs(errs, "deny_keys", cfg.DenyKeys)
	errs = AppendWordKeyErrs(errs, "extra_deny_keys", cfg.ExtraDenyKeys)
	names := map[string]bool{}
	for i, p := range cfg.CustomPatterns {
		if p.Name != "" && names[p.Name] {
			errs = append(errs, fmt.Errorf("custom_patterns::%d::name: %q is used twice", i, p.Name))
		}
		names[p.Name] = true
	}
	return validate.JoinFields(errs)
}

// Validate checks the pattern's name and regex and names the offending field; the Collector's
// confmap validation puts the path of the entry (scrub::custom_patterns::<i>) in front.
func (p *CustomPattern) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	} else if validate.NeedsRepair(p.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not valid UTF-8 without NUL bytes", p.Name))
	}
	if p.Regex == "" {
		errs = append(errs, errors.New("regex: must be set"))
	} else if _, err := regexp.Compile(p.Regex); err != nil {
		errs = append(errs, fmt.Errorf("regex: %w", err))
	}
	return validate.JoinFields(errs)
}

// AppendWordKeyErrs checks the entries of a word-matched key list (deny_keys, drop_keys) named key.
func AppendWordKeyErrs(errs []error, key string, entries []string) []error {
	for i, k := range entries {
		if len(NormalizeKey(k)) == 0 {
			errs = append(errs, fmt.Errorf("%s::%d: %q has no letters or digits", key, i, k))
		}
	}
	return errs
}

// CustomNames returns the names of the custom patterns, by index, as telemetry labels them.
func (s *Scrubber) CustomNames() []string {
	var names []string
	for _, p := range s.custom {
		names = append(names, p.name)
	}
	return names
}
