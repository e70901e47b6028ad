package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEnvironmentZone: $TZ decides when set, in its forms; without it the zone comes from the
// system's files. Either way the result is a name Go (and Postgres) can load.
func TestEnvironmentZone(t *testing.T) {
	tests := []struct {
		tz   string
		want string
	}{
		{"America/New_York", "America/New_York"},
		{":Europe/Berlin", "Europe/Berlin"},
		{"", "UTC"},
		{"/usr/share/zoneinfo/Asia/Kolkata", "Asia/Kolkata"},
		{"/usr/share/zoneinfo/posix/Asia/Kathmandu", "Asia/Kathmandu"},
	}
	for _, tt := range tests {
		got, note := environmentZone(env{"TZ": tt.tz}.lookup)
		assert.Equal(t, tt.want, got, tt.tz)
		assert.Empty(t, note, tt.tz)
		_, err := loadZone(got)
		assert.NoError(t, err, tt.tz)
	}
	got, note := environmentZone(env{"TZ": "/tmp/somewhere"}.lookup)
	assert.Equal(t, "UTC", got)
	assert.Contains(t, note, "TZ=/tmp/somewhere")

	got, _ = environmentZone(env{}.lookup)
	_, err := loadZone(got)
	require.NoError(t, err, "the system's zone %q", got)
}
