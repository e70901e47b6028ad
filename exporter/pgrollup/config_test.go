package pgrollup

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg.(*Config), nil
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, "track", cfg.Schema)
	assert.Equal(t, time.Second, cfg.FlushInterval)
	assert.Equal(t, 14*day, cfg.Retention.Minute.Duration())
	assert.Equal(t, 90*day, cfg.Retention.Hour.Duration())
	assert.Equal(t, 3*365*day, cfg.Retention.Day.Duration())
	assert.Equal(t, 90*day, cfg.Retention.Events.Duration())
	assert.Equal(t, []string{"service.name"}, cfg.KeepResourceAttributes)
	assert.True(t, cfg.MigrateOnStart)
	assert.Equal(t, 6*time.Hour, cfg.DedupWindow)
	assert.Equal(t, CumulativeConfig{InitialValue: "auto", InitialValueWindow: time.Hour, MaxStaleness: 24 * time.Hour}, cfg.Cumulative)
	assert.Equal(t, CompletenessConfig{Lateness: 15 * time.Second, LivenessInterval: 10 * time.Second,
		StaleAfter: time.Minute, SourceResolution: 30 * time.Second}, cfg.Completeness)
	assert.Equal(t, AnomaliesConfig{TimeZone: "UTC", RefreshInterval: 10 * time.Second}, cfg.Anomalies)
	require.True(t, cfg.QueueConfig.HasValue())
	assert.False(t, cfg.QueueConfig.Get().Batch.HasValue(), "the default queue must not merge requests")
	assert.True(t, cfg.BackOffConfig.Enabled)
	// The defaults are valid once a dsn is given.
	require.ErrorContains(t, confmap.Validate(cfg), "dsn: must be set")
	cfg.DSN = "postgres://localhost/track"
	require.NoError(t, confmap.Validate(cfg))
}

func TestConfigFull(t *testing.T) {
	cfg, err := loadConfig(t, "full")
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "postgres://track_writer:secret@db:5432/track?sslmode=disable", string(cfg.DSN))
	assert.Equal(t, "counts", cfg.Schema)
	assert.Equal(t, 250*time.Millisecond, cfg.FlushInterval)
	assert.Equal(t, 7*day, cfg.Retention.Minute.Duration())
	assert.Equal(t, 2160*time.Hour, cfg.Retention.Hour.Duration())
	assert.Equal(t, 2*365*day, cfg.Retention.Day.Duration())
	assert.Equal(t, 30*day, cfg.Retention.Events.Duration())
	assert.Equal(t, 5*time.Minute, cfg.Retention.Interval)
	assert.Equal(t, []string{"service.name", "deployment.environment"}, cfg.KeepResourceAttributes)
	assert.False(t, cfg.MigrateOnStart)
	assert.Equal(t, 12*time.Hour, cfg.DedupWindow)
	assert.Equal(t, int32(8), cfg.MaxConns)
	assert.Equal(t, CumulativeConfig{InitialValue: "drop", InitialValueWindow: 10 * time.Minute, MaxStaleness: 48 * time.Hour}, cfg.Cumulative)
	assert.Equal(t, CompletenessConfig{Lateness: 20 * time.Second, LivenessInterval: 5 * time.Second,
		StaleAfter: 2 * time.Minute, SourceResolution: time.Minute}, cfg.Completeness)
	assert.Equal(t, AnomaliesConfig{TimeZone: "America/New_York", RefreshInterval: time.Minute}, cfg.Anomalies)
	assert.Equal(t, 10*time.Second, cfg.TimeoutConfig.Timeout)
	q := cfg.QueueConfig.Get()
	assert.Equal(t, 20, q.NumConsumers)
	assert.Equal(t, int64(5000), q.QueueSize)
	require.NotNil(t, q.StorageID)
	assert.Equal(t, "file_storage", q.StorageID.String())
	assert.Equal(t, 10*time.Minute, cfg.BackOffConfig.MaxElapsedTime)
	assert.Equal(t, "[REDACTED]", cfg.DSN.String(), "the dsn never shows in logs")
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"no_dsn", "dsn: must be set"},
		{"zero_minute", "retention::minute: must be positive"},
		{"negative_hour", "retention::hour: must be positive"},
		{"short_day", "retention::day: 12h0m0s is shorter than its resolution (24h0m0s)"},
		{"short_minute", "retention::minute: 30s is shorter than its resolution (1m0s)"},
		{"bad_schema", "schema:"},
		{"batch", "sending_queue::batch: must not be set"},
		{"zero_events", "retention::events: must be positive"},
		{"short_events", "retention::events: 12h0m0s is shorter than one day"},
		{"bad_initial_value", `cumulative::initial_value: "first" must be auto, keep or drop`},
		{"short_lateness", "completeness::lateness: must be at least 1s, got 500ms"},
		{"slow_liveness", "completeness::liveness_interval: 40s must be at most half of completeness::stale_after (1m0s)"},
		{"zero_liveness", "completeness::liveness_interval: must be positive"},
		{"zero_stale_after", "completeness::stale_after: must be positive"},
		{"short_source_resolution", "completeness::source_resolution: must be at least 1s"},
		{"bad_time_zone", `anomalies::time_zone: "Mars/Olympus_Mons" is not an IANA time zone name`},
		{"fast_anomaly_refresh", "anomalies::refresh_interval: must be at least 1s, got 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(t, tt.name)
			require.NoError(t, err)
			require.ErrorContains(t, confmap.Validate(cfg), tt.want)
		})
	}
	t.Run("bad_period", func(t *testing.T) {
		_, err := loadConfig(t, "bad_period")
		require.ErrorContains(t, err, `invalid period "14 days"`)
	})
	t.Run("bad_events", func(t *testing.T) {
		_, err := loadConfig(t, "bad_events")
		require.ErrorContains(t, err, `invalid period "ninety days"`)
	})
}

func TestConfigValidateDirect(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"flush interval", func(c *Config) { c.FlushInterval = 0 }, "flush_interval: must be positive"},
		{"retention interval", func(c *Config) { c.Retention.Interval = 0 }, "retention::interval: must be positive"},
		{"dedup window", func(c *Config) { c.DedupWindow = -time.Second }, "dedup_window: must be positive"},
		{"empty attribute", func(c *Config) { c.KeepResourceAttributes = []string{"service.name", " "} }, "keep_resource_attributes[1]"},
		{"max conns", func(c *Config) { c.MaxConns = 0 }, "max_conns: must be at least 1"},
		{"initial value window", func(c *Config) { c.Cumulative.InitialValueWindow = -time.Minute }, "cumulative::initial_value_window: must not be negative"},
		{"max staleness", func(c *Config) { c.Cumulative.MaxStaleness = 0 }, "cumulative::max_staleness: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.DSN = "postgres://x"
			tt.modify(cfg)
			require.ErrorContains(t, confmap.Validate(cfg), tt.want)
		})
	}
}

func TestPeriodText(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"14d", 14 * day, "14d"},
		{"2w", 14 * day, "14d"},
		{"3y", 3 * 365 * day, "3y"},
		{"1.5d", 36 * time.Hour, "36h0m0s"},
		{"90m", 90 * time.Minute, "1h30m0s"},
	}
	for _, tt := range tests {
		var p Period
		require.NoError(t, p.UnmarshalText([]byte(tt.in)), tt.in)
		assert.Equal(t, tt.want, p.Duration(), tt.in)
		out, err := p.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, tt.out, string(out), tt.in)
	}
	var p Period
	require.Error(t, p.UnmarshalText([]byte("soon")))
}

func TestConfigRoundTrip(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cm := confmap.New()
	require.NoError(t, cm.Marshal(cfg))
	back := createDefaultConfig().(*Config)
	require.NoError(t, cm.Unmarshal(back))
	assert.Equal(t, cfg.Retention, back.Retention)
}

// TestRetentionKeys checks that the retention of each resolution is read from the field whose
// YAML key is the resolution's name, and that the defaults are the resolutions' own.
func TestRetentionKeys(t *testing.T) {
	var r RetentionConfig
	typ := reflect.TypeOf(r)
	for _, res := range resolutions {
		p := r.periods()[res.Index]
		var tag string
		for i := range typ.NumField() {
			if reflect.ValueOf(&r).Elem().Field(i).Addr().Interface() == p {
				tag = typ.Field(i).Tag.Get("mapstructure")
			}
		}
		assert.Equal(t, res.Name, tag, "the field read for %s", res.Name)
		assert.Equal(t, res.DefaultRetention, createDefaultConfig().(*Config).Retention.of(res))
	}
}
