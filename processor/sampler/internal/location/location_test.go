package location

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPolicy(t *testing.T) {
	assert.Nil(t, New(&Config{DropKeys: DefaultDropKeys}), "no policy while disabled")
	cfg := Default()
	cfg.KeepKeys = []string{"client.geo.*"}
	p := New(&cfg)
	for _, k := range []string{"geo.locality.name", "geo.postal_code", "geo.location.lat", "user.city", "geoCoordinates"} {
		assert.True(t, p.Drops(k), k)
	}
	for _, k := range []string{"geo.country.iso_code", "geo.region.iso_code", "client.geo.locality.name", "url.path"} {
		assert.False(t, p.Drops(k), k)
	}
	assert.True(t, p.DropsNested("geo", "location"))
	assert.True(t, p.DropsNested("location", "lat"))
	assert.False(t, p.DropsNested("client.geo", "location"), "kept by client.geo.*")
	assert.False(t, p.DropsNested("", "location"))
}
