package sampler

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/trackhq/track/processor/sampler/internal/location"
	"github.com/trackhq/track/processor/sampler/internal/metadata"
	"github.com/trackhq/track/processor/sampler/internal/scrub"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config)
}

func TestLoadConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg := loadConfig(t, "")
		require.NoError(t, confmap.Validate(cfg))
		want := createDefaultConfig().(*Config)
		want.Hashing.Key = "0123456789abcdef0123"
		assert.Equal(t, want, cfg)
		assert.True(t, cfg.Validation.Enabled)
		assert.Equal(t, 32, cfg.Validation.MaxAttributes)
		assert.Equal(t, 256, cfg.Validation.MaxValueLength)
		assert.Equal(t, time.Hour, cfg.Validation.MaxFuture)
		assert.Equal(t, 90*24*time.Hour, cfg.Validation.MaxAge)
		assert.Equal(t, ScrubModeDeny, cfg.Scrub.Mode)
		assert.Contains(t, cfg.Scrub.DenyKeys, "password")
		assert.True(t, cfg.Scrub.Patterns.Email)
		assert.False(t, cfg.Scrub.Patterns.IP)
		assert.Equal(t, []string{"user.id", "enduser.id"}, cfg.Hashing.Keys)
		assert.Equal(t, []string{"exception.stacktrace", "exception.message"}, cfg.Validation.LongValueKeys)
		assert.Equal(t, 16384, cfg.Validation.MaxLongValueLength)
		assert.True(t, cfg.Location.Enabled)
		assert.Subset(t, cfg.Location.DropKeys, []string{"locality", "postal_code", "geo.location", "coordinates", "latitude", "longitude"})
		assert.Empty(t, cfg.Location.ExtraDropKeys)
		assert.Empty(t, cfg.Location.KeepKeys)
		assert.Equal(t, 1000, cfg.Cardinality.MaxSeries)
		assert.Equal(t, time.Hour, cfg.Cardinality.Window)
		assert.True(t, cfg.Sampling.Logs.Enabled)
		assert.False(t, cfg.Sampling.Metrics.Enabled)
	})
	t.Run("custom", func(t *testing.T) {
		cfg := loadConfig(t, "custom")
		require.NoError(t, confmap.Validate(cfg))
		assert.Equal(t, 16, cfg.Validation.MaxAttributes)
		assert.Equal(t, 128, cfg.Validation.MaxValueLength)
		assert.False(t, cfg.Validation.RequireEventName)
		assert.Equal(t, 30*time.Minute, cfg.Validation.MaxFuture)
		assert.Equal(t, 720*time.Hour, cfg.Validation.MaxAge)
		assert.Equal(t, []string{"exception.stacktrace"}, cfg.Validation.LongValueKeys)
		assert.Equal(t, 4096, cfg.Validation.MaxLongValueLength)
		assert.Equal(t, LocationConfig{
			Enabled:       true,
			DropKeys:      []string{"city", "geo.location"},
			ExtraDropKeys: []string{"geo.region"},
			KeepKeys:      []string{"geo.locality.name", "client.geo.*"},
		}, cfg.Location)
		assert.Equal(t, ScrubModeAllow, cfg.Scrub.Mode)
		assert.Equal(t, []string{"service.name", "http.*"}, cfg.Scrub.AllowKeys)
		assert.Equal(t, []string{"session_secret"}, cfg.Scrub.ExtraDenyKeys)
		assert.Equal(t, scrub.DefaultDenyKeys, cfg.Scrub.DenyKeys)
		assert.Equal(t, PatternsConfig{Email: true, CardNumber: true, IP: true}, cfg.Scrub.Patterns)
		assert.Equal(t, []CustomPattern{{Name: "order_ref", Regex: "ORD-[0-9]{6}"}}, cfg.Scrub.CustomPatterns)
		assert.False(t, cfg.Scrub.Bodies)
		assert.Equal(t, []string{"user.id", "account.id"}, cfg.Hashing.Keys)
		assert.Equal(t, 16, cfg.Hashing.Length)
		assert.Equal(t, CardinalityConfig{Enabled: true, MaxSeries: 500, Window: 10 * time.Minute, MaxMetrics: 100, MaxTrackedSeries: 10000}, cfg.Cardinality)
		assert.Equal(t, 0.5, cfg.Sampling.Logs.Probability)
		assert.Equal(t, SampleByTraceID, cfg.Sampling.Logs.By)
		assert.Equal(t, []SamplingRule{{Name: "error", Probability: 1}, {Name: "scroll", Probability: 0.1}, {Name: "page.*", Probability: 0.25}}, cfg.Sampling.Logs.Rules)
		assert.True(t, cfg.Sampling.Metrics.Enabled)
		assert.Equal(t, []SamplingRule{{Name: "http.server.request.count", Probability: 0.2}}, cfg.Sampling.Metrics.Rules)
	})
	t.Run("no_hashing", func(t *testing.T) {
		require.NoError(t, confmap.Validate(loadConfig(t, "no_hashing")))
	})
	t.Run("keep_city", func(t *testing.T) {
		cfg := loadConfig(t, "keep_city")
		require.NoError(t, confmap.Validate(cfg))
		assert.Equal(t, location.DefaultDropKeys, cfg.Location.DropKeys, "keep_keys leaves the default drop list")
		assert.Equal(t, []string{"geo.locality.name"}, cfg.Location.KeepKeys)
	})
	t.Run("location_off", func(t *testing.T) {
		cfg := loadConfig(t, "location_off")
		require.NoError(t, confmap.Validate(cfg))
		assert.False(t, cfg.Location.Enabled)
	})
}

func TestConfigValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"bad_regex", []string{"scrub::custom_patterns::0: regex: error parsing regexp: missing closing ]"}},
		{"bad_probability", []string{"sampling::logs: rules::0::probability: 1.5 is outside (0,1]"}},
		{"zero_probability", []string{"sampling::metrics: probability: 0 is outside (0,1]"}},
		{"short_key", []string{"hashing: key: must be at least 16 bytes while enabled is true (got 9)"}},
		{"no_key", []string{"hashing: key: must be at least 16 bytes while enabled is true (got 0)"}},
		{"bad_mode", []string{`scrub: mode: "maybe" is not one of deny, allow`}},
		{"bad_by", []string{`sampling::logs: by: "session" is not one of attribute, trace_id, random`}},
		{"bad_cardinality", []string{"cardinality: max_series: 0 must be at least 1; window: 0s must be positive"}},
		{"bad_length", []string{"hashing: length: 80 is outside [16, 64]"}},
		{"bad_location", []string{
			`location: drop_keys::1: "..." has no letters or digits; `,
			`; extra_drop_keys::0: "" has no letters or digits; `,
			`; keep_keys::0: "geo.*.name" may only end in "*"; `,
			`; keep_keys::1: "*" keeps every key`,
		}},
		{"bad_long_value", []string{"validation: max_long_value_length: must not be negative; long_value_keys::1: must not be empty"}},
		{"bad_rule_name", []string{`sampling::logs: rules::0::name: "a*b*" may only end in "*"; rules::1::name: must be set`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, tt.name))
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestConfigValidateInCode(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"negative max attributes", func(c *Config) { c.Validation.MaxAttributes = -1 }, "validation: max_attributes: must not be negative"},
		{"negative max value length", func(c *Config) { c.Validation.MaxValueLength = -1 }, "validation: max_value_length: must not be negative"},
		{"negative max age", func(c *Config) { c.Validation.MaxAge = -time.Second }, "validation: max_age: must not be negative"},
		{"negative max future", func(c *Config) { c.Validation.MaxFuture = -time.Second }, "validation: max_future: must not be negative"},
		{"empty deny key", func(c *Config) { c.Scrub.DenyKeys = []string{"..."} }, `scrub: deny_keys::0: "..." has no letters or digits`},
		{"empty extra deny key", func(c *Config) { c.Scrub.ExtraDenyKeys = []string{""} }, `scrub: extra_deny_keys::0: "" has no letters or digits`},
		{"custom pattern without name", func(c *Config) { c.Scrub.CustomPatterns = []CustomPattern{{Regex: "x"}} }, "scrub::custom_patterns::0: name: must be set"},
		{"duplicate custom pattern", func(c *Config) {
			c.Scrub.CustomPatterns = []CustomPattern{{Name: "a", Regex: "x"}, {Name: "a", Regex: "y"}}
		}, `scrub: custom_patterns::1::name: "a" is used twice`},
		{"custom pattern without regex", func(c *Config) { c.Scrub.CustomPatterns = []CustomPattern{{Name: "a"}} }, "scrub::custom_patterns::0: regex: must be set"},
		{"empty location keep key", func(c *Config) { c.Location.KeepKeys = []string{""} }, `location: keep_keys::0: "" keeps every key`},
		{"empty location drop key", func(c *Config) { c.Location.DropKeys = []string{"-"} }, `location: drop_keys::0: "-" has no letters or digits`},
		{"empty hash key name", func(c *Config) { c.Hashing.Keys = []string{""} }, "hashing: keys::0: must not be empty"},
		{"attribute sampling without attribute", func(c *Config) { c.Sampling.Logs.Attribute = "" }, "sampling::logs: attribute: must be set when by is attribute"},
		{"NaN probability", func(c *Config) { c.Sampling.Logs.Probability = nan() }, "sampling::logs: probability: NaN is outside (0,1]"},
		{"negative probability", func(c *Config) { c.Sampling.Logs.Probability = -0.1 }, "sampling::logs: probability: -0.1 is outside (0,1]"},
		{"max metrics", func(c *Config) { c.Cardinality.MaxMetrics = 0 }, "cardinality: max_metrics: 0 must be at least 1"},
		{"max tracked series", func(c *Config) { c.Cardinality.MaxTrackedSeries = 0 }, "cardinality: max_tracked_series: 0 must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Hashing.Key = "0123456789abcdef0123"
			require.NoError(t, confmap.Validate(cfg))
			tt.mutate(cfg)
			require.ErrorContains(t, confmap.Validate(cfg), tt.want)
		})
	}
}
