package conventions

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" for valid, else a part of the error
	}{
		{"simple", "new-signup", ""},
		{"all allowed bytes", "a.B_c-9/x", ""},
		{"longest", "a" + strings.Repeat("b", MaxNameLen-1), ""},
		{"empty", "", "empty name"},
		{"too long", "a" + strings.Repeat("b", MaxNameLen), "longer than 255 bytes"},
		{"starts with a digit", "1signup", "must start with an ASCII letter"},
		{"starts with non-ASCII", "ésignup", "must start with an ASCII letter"},
		{"space", "new signup", "' ' at byte 3"},
		{"NUL", "new\x00signup", `'\x00' at byte 3`},
		{"invalid UTF-8", "new\xffsignup", `'ÿ' at byte 3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.in)
			assert.Equal(t, tt.want == "", ValidName(tt.in), "ValidName agrees with ValidateName")
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidName)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// FuzzValidName checks that the two checks agree and that a valid name is made only of the
// allowed bytes.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"", "a", "new-signup", "1a", "a b", "a\x00", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := ValidName(s)
		require.Equal(t, ok, ValidateName(s) == nil)
		if ok {
			require.LessOrEqual(t, len(s), MaxNameLen)
			require.Equal(t, -1, strings.IndexFunc(s, func(r rune) bool {
				return !(r < 128 && nameByte(byte(r)))
			}))
		}
	})
}

func TestKeysFromSemconv(t *testing.T) {
	// The keys the library, the sampler, the exporter and the browser client agree on.
	assert.Equal(t, []string{"service.name", "url.path", "user.id", "geo.country.iso_code", "geo.region.iso_code",
		"exception.stacktrace"}, []string{ServiceName, URLPath, UserID, GeoCountry, GeoRegion, ExceptionStacktrace})
}

func TestValidIdentifier(t *testing.T) {
	for in, want := range map[string]bool{
		"track": true, "_t1": true, strings.Repeat("a", 63): true,
		"": false, "Track": false, "1t": false, "t-1": false, "t;drop": false, strings.Repeat("a", 64): false,
	} {
		assert.Equal(t, want, ValidIdentifier(in), "%q", in)
	}
}
