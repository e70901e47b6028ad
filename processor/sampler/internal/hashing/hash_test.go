package hashing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestHashValue(t *testing.T) {
	const key = "0123456789abcdef0123"
	want := func(s string, n int) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))[:n]
	}
	h := New([]byte(key), 20)
	tests := []struct {
		name string
		v    pcommon.Value
		want string // "" when the value is left alone
	}{
		{"string", pcommon.NewValueStr("alice"), want("alice", 20)},
		{"int", pcommon.NewValueInt(987), want("987", 20)},
		{"bytes", func() pcommon.Value { v := pcommon.NewValueBytes(); v.Bytes().FromRaw([]byte("bob")); return v }(), want("bob", 20)},
		{"bool", pcommon.NewValueBool(true), want("true", 20)},
		{"empty string", pcommon.NewValueStr(""), ""},
		{"empty", pcommon.NewValueEmpty(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.v.AsRaw()
			hashed := h.HashValue(tc.v)
			assert.Equal(t, tc.want != "", hashed)
			if tc.want == "" {
				assert.Equal(t, before, tc.v.AsRaw())
				return
			}
			assert.Equal(t, tc.want, tc.v.Str())
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Default()
	require.ErrorContains(t, cfg.Validate(), "key: must be at least 16 bytes while enabled is true (got 0)")
	cfg.Enabled = false
	require.NoError(t, cfg.Validate(), "a disabled stage is not checked")
}
