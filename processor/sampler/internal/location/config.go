package location // import "github.com/trackhq/track/processor/sampler/internal/location"

import (
	"fmt"
	"strings"

	"github.com/trackhq/track/processor/sampler/internal/scrub"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// Config configures location coarsening. Attributes whose key matches DropKeys and not KeepKeys
// are removed from resources, scopes, data points, log records and map bodies, so that a location
// is known to its region at most. The default list keeps geo.country.iso_code and
// geo.region.iso_code and removes cities, postal codes and coordinates.
type Config struct {
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

// DefaultDropKeys lists the location keys removed by default: anything finer than a region. They
// are word-matched, so each entry also covers its prefixed variants (client.geo.*, source.geo.*,
// user.*) and camelCase spellings.
var DefaultDropKeys = []string{
	"locality", "city", // geo.locality.name, client.geo.city_name, user.city
	"postal_code", "postcode", "zip_code", "zipcode", // geo.postal_code
	"geo.location", "coordinates", // geo.location.lat/lon, client.geo.location, geo.coordinates
	"latitude", "longitude",
	"geo.lat", "geo.lon", "geo.lng",
	"location.lat", "location.lon", "location.lng",
}

// Default returns the default location configuration.
func Default() Config {
	return Config{Enabled: true, DropKeys: append([]string(nil), DefaultDropKeys...)}
}

// Validate checks the fields of cfg while coarsening is enabled and names each offending field;
// the Collector's confmap validation puts the path of cfg in front.
func (cfg *Config) Validate() error {
	if !cfg.Enabled {
		return nil
	}
	errs := scrub.AppendWordKeyErrs(nil, "drop_keys", cfg.DropKeys)
	errs = scrub.AppendWordKeyErrs(errs, "extra_drop_keys", cfg.ExtraDropKeys)
	for i, k := range cfg.KeepKeys {
		if k == "" || k == "*" {
			errs = append(errs, fmt.Errorf("keep_keys::%d: %q keeps every key; disable location instead", i, k))
		} else if strings.Contains(strings.TrimSuffix(k, "*"), "*") {
			errs = append(errs, fmt.Errorf("keep_keys::%d: %q may only end in \"*\"", i, k))
		}
	}
	return validate.JoinFields(errs)
}

// Policy decides which keys location coarsening removes. It is safe for concurrent use.
type Policy struct {
	drop scrub.WordMatcher
	keep scrub.KeySet
}

// New returns the policy of cfg, or nil when coarsening is off.
func New(cfg *Config) *Policy {
	if !cfg.Enabled {
		return nil
	}
	return &Policy{
		drop: scrub.NewWordMatcher(append(append([]string(nil), cfg.DropKeys...), cfg.ExtraDropKeys...)),
		keep: scrub.NewKeySet(cfg.KeepKeys),
	}
}

// Drops reports whether key is removed.
func (p *Policy) Drops(key string) bool {
	return p.drop.Match(key) && !p.keep.Contains(key)
}

// DropsNested reports whether key, found in a map nested under the key parent (a map body or a map
// attribute value), is removed when read as "parent.key": it catches {"geo": {"location": ...}}
// and {"location": {"lat": ...}}.
func (p *Policy) DropsNested(parent, key string) bool {
	if parent == "" || !p.drop.MatchJoined(parent, key) {
		return false
	}
	return !p.keep.Contains(parent + "." + key)
}
