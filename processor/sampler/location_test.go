package sampler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestLocationDefaultKeys(t *testing.T) {
	p := newKeyPolicy(testConfig())
	dropped := []string{
		// OpenTelemetry semantic conventions (geo.*).
		"geo.locality.name", "geo.postal_code", "geo.location.lat", "geo.location.lon",
		// Elastic Common Schema and prefixed variants.
		"client.geo.city_name", "client.geo.location", "client.geo.location.lat", "client.geo.postal_code",
		"source.geo.location.lon", "destination.geo.city_name", "client.geo.locality.name",
		// Other spellings seen in event payloads.
		"geo.coordinates", "geo.coordinates.lat", "geo.lat", "geo.lon", "geo.lng", "geoLocation",
		"user.city", "address.zip_code", "shipping.postcode", "location.latitude", "location.lng",
		"device.longitude", "Geo.Locality.Name",
	}
	kept := []string{
		"geo.country.iso_code", "geo.region.iso_code", "geo.continent.code", "geo.timezone",
		"client.geo.country_iso_code", "client.geo.region_name", "client.geo.continent_name",
		// Words that merely contain a dropped word survive.
		"http.response.latency", "capacity", "electricity.kwh", "velocity", "translation.lang",
		// A bare "location" is usually a URL (window.location), not coordinates.
		"page.location", "location", "url.path", "user.id", "exception.stacktrace",
	}
	for _, k := range dropped {
		assert.Equal(t, actLocation, p.action(k), "%s is dropped", k)
	}
	for _, k := range kept {
		assert.NotEqual(t, actLocation, p.action(k), "%s is kept", k)
	}
}

func TestLocationConfigurable(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   map[string]any // of the input in locationAttrs
	}{
		{"default", func(*Config) {}, map[string]any{
			"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "url.path": "/signup",
		}},
		{"keep city", func(c *Config) { c.Location.KeepKeys = []string{"geo.locality.name"} }, map[string]any{
			"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "geo.locality.name": "Berlin", "url.path": "/signup",
		}},
		{"keep by prefix", func(c *Config) { c.Location.KeepKeys = []string{"geo.*"} }, map[string]any{
			"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "geo.locality.name": "Berlin",
			"geo.postal_code": "10117", "geo.location.lat": 52.52, "geo.location.lon": 13.40, "url.path": "/signup",
		}},
		{"extra drop keys", func(c *Config) { c.Location.ExtraDropKeys = []string{"geo.region"} }, map[string]any{
			"geo.country.iso_code": "DE", "url.path": "/signup",
		}},
		{"drop keys replace the defaults", func(c *Config) { c.Location.DropKeys = []string{"geo.location"} }, map[string]any{
			"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "geo.locality.name": "Berlin",
			"geo.postal_code": "10117", "url.path": "/signup",
		}},
		{"disabled", func(c *Config) { c.Location.Enabled = false }, map[string]any{
			"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "geo.locality.name": "Berlin",
			"geo.postal_code": "10117", "geo.location.lat": 52.52, "geo.location.lon": 13.40, "url.path": "/signup",
		}},
		{"scrubbing off", func(c *Config) { c.Scrub.Enabled = false }, map[string]any{
			"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "url.path": "/signup",
		}},
		{"allow mode cannot let a city through", func(c *Config) {
			c.Scrub.Mode = ScrubModeAllow
			c.Scrub.AllowKeys = []string{"service.name", "geo.*"}
		}, map[string]any{
			"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE",
		}},
		{"kept city is still scrubbed", func(c *Config) {
			c.Location.KeepKeys = []string{"geo.locality.name"}
			c.Scrub.Mode = ScrubModeAllow
			c.Scrub.AllowKeys = []string{"service.name", "geo.country.iso_code"}
		}, map[string]any{
			"geo.country.iso_code": "DE",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.mutate(cfg)
			s, tt, _ := newTestSampler(t, cfg)
			ld, _, lrs := newLogs()
			lr := event(lrs, "page.view", testNow)
			locationAttrs(lr.Attributes())
			before := lr.Attributes().Len()
			_, err := s.processLogs(context.Background(), ld)
			require.NoError(t, err)
			lr.Attributes().Remove(adjustedCountKey)
			assert.Equal(t, tc.want, lr.Attributes().AsRaw())
			removed := counter(t, tt, "processor_sampler_removed_attributes", reason("location")) +
				counter(t, tt, "processor_sampler_removed_attributes", reason("not_allowed"))
			assert.Equal(t, int64(before-len(tc.want)), removed, "every removal is counted")
		})
	}
}

func locationAttrs(m pcommon.Map) {
	m.PutStr("geo.country.iso_code", "DE")
	m.PutStr("geo.region.iso_code", "DE-BE")
	m.PutStr("geo.locality.name", "Berlin")
	m.PutStr("geo.postal_code", "10117")
	m.PutDouble("geo.location.lat", 52.52)
	m.PutDouble("geo.location.lon", 13.40)
	m.PutStr("url.path", "/signup")
}

// TestLocationEverywhere checks resource, scope, point and record attributes and map bodies, and
// that the removals are counted under reason=location and not under another reason.
func TestLocationEverywhere(t *testing.T) {
	s, tt, _ := newTestSampler(t, testConfig())

	ld, rl, lrs := newLogs()
	rl.Resource().Attributes().PutStr("client.geo.city_name", "Berlin")
	rl.ScopeLogs().At(0).Scope().Attributes().PutStr("geo.postal_code", "10117")
	lr := event(lrs, "click", testNow)
	body := lr.Body().SetEmptyMap()
	body.PutStr("target", "#next")
	geo := body.PutEmptyMap("geo")
	geo.PutStr("country", "DE")
	geo.PutStr("city", "Berlin")
	geo.PutEmptyMap("location").PutDouble("lat", 52.52)
	body.PutEmptyMap("location").PutDouble("lon", 13.40)
	place := body.PutEmptySlice("places").AppendEmpty().SetEmptyMap()
	place.PutStr("name", "office")
	place.PutStr("city", "Hamburg")
	lr.Attributes().PutEmptyMap("user").PutStr("postal_code", "10117")
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"service.name": "web"}, rl.Resource().Attributes().AsRaw())
	assert.Equal(t, 0, rl.ScopeLogs().At(0).Scope().Attributes().Len())
	assert.Equal(t, map[string]any{
		"target":   "#next",
		"geo":      map[string]any{"country": "DE"},
		"location": map[string]any{},
		"places":   []any{map[string]any{"name": "office"}},
	}, lr.Body().Map().AsRaw())
	assert.Equal(t, map[string]any{"user": map[string]any{}, adjustedCountKey: 1.0}, lr.Attributes().AsRaw())

	md, rm, sm := newMetrics()
	rm.Resource().Attributes().PutDouble("geo.location.lat", 52.52)
	dp := deltaSum(sm, "signup.completed").AppendEmpty()
	dp.SetIntValue(1)
	locationAttrs(dp.Attributes())
	_, err = s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"service.name": "checkout"}, rm.Resource().Attributes().AsRaw())
	assert.Equal(t, map[string]any{"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "url.path": "/signup"}, dp.Attributes().AsRaw())

	assert.Equal(t, int64(1+1+5+1+4), counter(t, tt, "processor_sampler_removed_attributes", reason("location")))
	assert.Equal(t, int64(0), counter(t, tt, "processor_sampler_removed_attributes", reason("deny_list")))
}

func TestLocationNestedWithScrubbingOff(t *testing.T) {
	cfg := testConfig()
	cfg.Scrub.Enabled = false
	s, tt, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	lr := event(lrs, "click", testNow)
	geo := lr.Attributes().PutEmptyMap("geo")
	geo.PutStr("country", "DE")
	geo.PutStr("locality", "Berlin")
	geo.PutEmptySlice("location").AppendEmpty().SetDouble(52.52)
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	v, _ := lr.Attributes().Get("geo")
	assert.Equal(t, map[string]any{"country": "DE"}, v.Map().AsRaw())
	assert.Equal(t, int64(2), counter(t, tt, "processor_sampler_removed_attributes", reason("location")))
}

func TestLocationNestedKeep(t *testing.T) {
	cfg := testConfig()
	cfg.Location.KeepKeys = []string{"geo.location"}
	s, _, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	lr := event(lrs, "click", testNow)
	body := lr.Body().SetEmptyMap()
	body.PutEmptyMap("geo").PutStr("location", "52.52,13.40")
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"geo": map[string]any{"location": "52.52,13.40"}}, body.AsRaw())
}

// TestLocationBeforeCardinality checks that coarsening runs before the cardinality cap: points that
// differ only by city are one series, so cities cannot exhaust the cap.
func TestLocationBeforeCardinality(t *testing.T) {
	cfg := testConfig()
	cfg.Cardinality.MaxSeries = 1
	s, tt, _ := newTestSampler(t, cfg)
	md, _, sm := newMetrics()
	dps := deltaSum(sm, "page.views")
	for _, city := range []string{"Berlin", "Hamburg", "Munich"} {
		dp := dps.AppendEmpty()
		dp.SetIntValue(1)
		dp.Attributes().PutStr("geo.country.iso_code", "DE")
		dp.Attributes().PutStr("geo.locality.name", city)
	}
	_, err := s.processMetrics(context.Background(), stamped(md))
	require.NoError(t, err)
	require.Equal(t, 3, dps.Len())
	for i := range dps.Len() {
		assert.Equal(t, map[string]any{"geo.country.iso_code": "DE"}, dps.At(i).Attributes().AsRaw())
	}
	assert.Equal(t, int64(0), counter(t, tt, "processor_sampler_overflow_points"))
	assert.Equal(t, int64(3), counter(t, tt, "processor_sampler_removed_attributes", reason("location")))
}

// TestLocationDoesNotCountAgainstMaxAttributes checks that dropped location keys leave room for
// other attributes under validation.max_attributes, as deny-listed keys do.
func TestLocationDoesNotCountAgainstMaxAttributes(t *testing.T) {
	cfg := testConfig()
	cfg.Validation.MaxAttributes = 3
	s, tt, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	lr := event(lrs, "page.view", testNow)
	locationAttrs(lr.Attributes())
	lr.Attributes().PutStr("extra", "x")
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	lr.Attributes().Remove(adjustedCountKey)
	assert.Equal(t, map[string]any{"geo.country.iso_code": "DE", "geo.region.iso_code": "DE-BE", "url.path": "/signup"}, lr.Attributes().AsRaw())
	assert.Equal(t, int64(4), counter(t, tt, "processor_sampler_removed_attributes", reason("location")))
	assert.Equal(t, int64(1), counter(t, tt, "processor_sampler_removed_attributes", reason("count_limit")))
}

func TestLongValueKeys(t *testing.T) {
	cfg := testConfig()
	s, tt, _ := newTestSampler(t, cfg)
	ld, _, lrs := newLogs()
	lr := event(lrs, "error", testNow)
	trace := strings.Repeat("main.handler()\n\t/app/main.go:42\n", 200) // 6.4 KB
	huge := strings.Repeat("x", 20000)
	lr.Attributes().PutStr("exception.stacktrace", trace)
	lr.Attributes().PutStr("exception.message", strings.Repeat("m", 1000))
	lr.Attributes().PutStr("click.target", strings.Repeat("t", 1000))
	other := event(lrs, "error", testNow)
	other.Attributes().PutStr("exception.stacktrace", huge)
	_, err := s.processLogs(context.Background(), ld)
	require.NoError(t, err)
	v, _ := lr.Attributes().Get("exception.stacktrace")
	assert.Equal(t, trace, v.Str(), "a stack trace is not cut at max_value_length")
	v, _ = lr.Attributes().Get("exception.message")
	assert.Len(t, v.Str(), 1000)
	v, _ = lr.Attributes().Get("click.target")
	assert.Len(t, v.Str(), 256)
	v, _ = other.Attributes().Get("exception.stacktrace")
	assert.Len(t, v.Str(), 16384)
	assert.Equal(t, int64(2), counter(t, tt, "processor_sampler_truncated_values", reason("value_length")))
}

// TestRemovalsPastPosition64 covers the removals processAttrs cannot record as bits: a map of more
// than 64 attributes (validation off, so nothing bounds or repairs it first) with denied keys before
// and after the 64th position, and one within the first 64 only.
func TestRemovalsPastPosition64(t *testing.T) {
	for _, tc := range []struct {
		name   string
		denied []int // positions of the denied keys
	}{
		{"before and after 64", []int{3, 66}},
		{"before 64 only", []int{3}},
		{"after 64 only", []int{70}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Validation.Enabled = false
			s, tt, _ := newTestSampler(t, cfg)
			ld, _, lrs := newLogs()
			a := event(lrs, "click", testNow).Attributes()
			want := map[string]any{}
			for i := range 72 {
				k := fmt.Sprintf("k%02d", i)
				if slices.Contains(tc.denied, i) {
					k = fmt.Sprintf("k%02d.password", i)
				} else {
					want[k] = "v"
				}
				a.PutStr(k, "v")
			}
			want[adjustedCountKey] = 1.0
			_, err := s.processLogs(context.Background(), ld)
			require.NoError(t, err)
			assert.Equal(t, want, a.AsRaw())
			assert.Equal(t, int64(len(tc.denied)), counter(t, tt, "processor_sampler_removed_attributes", reason("deny_list")))
		})
	}
}
