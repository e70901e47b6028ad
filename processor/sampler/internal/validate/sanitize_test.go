package validate

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trackhq/track/processor/sampler/internal/tally"
)

func TestTruncateUTF8(t *testing.T) {
	assert.Equal(t, "abc", TruncateUTF8("abcdef", 3))
	assert.Equal(t, "ab", TruncateUTF8("abé", 3)) // é is two bytes
	assert.Equal(t, "héllo", TruncateUTF8("héllo", 10))
	assert.Equal(t, "", TruncateUTF8("€", 2))
}

func TestRepairString(t *testing.T) {
	tests := []struct {
		name, in, want string
		nul, utf8      int64
	}{
		{"clean", "checkout /api/v1 é", "checkout /api/v1 é", 0, 0},
		{"nul", "a\x00b", "a\uFFFDb", 1, 0},
		{"nuls", "\x00\x00", "\uFFFD\uFFFD", 1, 0},
		{"invalid byte", "pro\xff", "pro\uFFFD", 0, 1},
		{"invalid run", "a\xff\xfe\xfdb", "a\uFFFDb", 0, 1},
		{"truncated sequence", "caf\xc3", "caf\uFFFD", 0, 1},
		{"surrogate half", "\xed\xa0\x80", "\uFFFD", 0, 1},
		{"both", "\x00\xff", "\uFFFD\uFFFD", 1, 1},
		{"empty", "", "", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c tally.Counts
			got := RepairString(tc.in, &c)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.nul, c.Repaired[tally.RepairNUL])
			assert.Equal(t, tc.utf8, c.Repaired[tally.RepairInvalidUTF8])
			assert.False(t, NeedsRepair(got))
		})
	}
}

func TestRepairKeyBound(t *testing.T) {
	var c tally.Counts
	long := strings.Repeat("é", 200) // 400 bytes
	got := RepairKey(long, &c)
	assert.Equal(t, strings.Repeat("é", 128), got, "cut at a UTF-8 boundary")
	assert.Equal(t, int64(1), c.Truncated[tally.TruncKeyLength])
	assert.Equal(t, "k\uFFFDey", RepairKey("k\x00ey", &c))
	for _, k := range []string{"k\x00ey", "a\xff\xfeb", long, "clean"} {
		assert.Equal(t, RepairKey(k, &c), StoredKey(k))
	}
}

// TestRepairKeysManyKeys covers maps with more keys to rename than maxRenamedKeys.
func TestRepairKeysManyKeys(t *testing.T) {
	var c tally.Counts
	m := pcommon.NewMap()
	for i := range 100 {
		m.PutInt(fmt.Sprintf("k%03d\x00", i), int64(i))
	}
	m.PutInt("clean", -1)
	RepairKeys(m, 0, &c)
	assert.Equal(t, maxRenamedKeys+1, m.Len())
	assert.Equal(t, int64(100-maxRenamedKeys), c.Removed[tally.RemoveInvalidKey])
	v, ok := m.Get("k000\uFFFD")
	require.True(t, ok)
	assert.Equal(t, int64(0), v.Int(), "renamed entries keep their values")
	_, ok = m.Get(fmt.Sprintf("k%03d\uFFFD", maxRenamedKeys))
	assert.False(t, ok, "the keys past the rename bound are removed")
}

func TestJoinFields(t *testing.T) {
	require.NoError(t, JoinFields(nil))
	a, b := errors.New("max_age: must not be negative"), errors.New("long_value_keys::1: must not be empty")
	err := JoinFields([]error{a, b})
	assert.EqualError(t, err, "max_age: must not be negative; long_value_keys::1: must not be empty",
		"one line, so that the key path confmap puts in front covers every error")
	assert.ErrorIs(t, err, a)
	assert.ErrorIs(t, err, b)
}
