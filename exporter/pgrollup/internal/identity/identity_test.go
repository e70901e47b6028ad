package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSplitInvertsHead: Split returns what AppendHead and the attributes were built from, also for
// names longer than one varint byte and empty ones.
func TestSplitInvertsHead(t *testing.T) {
	tests := []struct{ metric, service, attrs string }{
		{"m", "svc", `{"a":1}`},
		{"", "", "{}"},
		{strings.Repeat("m", 300), strings.Repeat("s", 20000), `{"k":"v"}`},
	}
	for _, tt := range tests {
		id := string(AppendHead(nil, tt.metric, tt.service)) + tt.attrs
		m, s, a := Split(id)
		assert.Equal(t, tt.metric, m)
		assert.Equal(t, tt.service, s)
		assert.Equal(t, tt.attrs, a)
	}
}

// TestKeyIsSHA256Prefix pins the stored key: the first half of the identity's SHA-256.
func TestKeyIsSHA256Prefix(t *testing.T) {
	id := string(AppendHead(nil, "new-signup", "login")) + `{"plan":"pro"}`
	sum := sha256.Sum256([]byte(id))
	k := Key(id)
	assert.Equal(t, hex.EncodeToString(sum[:16]), hex.EncodeToString(k[:]))
	assert.NotEqual(t, k, Key(id+" "))
}

// TestAppendKVDistinct: attribute sequences that would run together without length prefixes, or
// that differ only in a value's type, append different bytes.
func TestAppendKVDistinct(t *testing.T) {
	jsonValue := func(b []byte, v pcommon.Value) []byte { return append(b, v.AsString()...) }
	enc := func(kvs ...any) string {
		var b []byte
		for i := 0; i < len(kvs); i += 2 {
			v := pcommon.NewValueEmpty()
			assert.NoError(t, v.FromRaw(kvs[i+1]))
			b = AppendKV(b, kvs[i].(string), v, jsonValue)
		}
		return string(b)
	}
	seqs := map[string]string{
		"ab=c":       enc("ab", "c"),
		"a=bc":       enc("a", "bc"),
		"a=b,c=":     enc("a", "b", "c", ""),
		"a=1 string": enc("a", "1"),
		"a=1 int":    enc("a", int64(1)),
		"a=1 double": enc("a", 1.0),
		"a=true":     enc("a", true),
		"a=[1]":      enc("a", []any{int64(1)}),
		"a={}":       enc("a", map[string]any{}),
		"a=nil":      enc("a", nil),
	}
	seen := map[string]string{}
	for name, b := range seqs {
		if other, ok := seen[b]; ok {
			t.Errorf("%s and %s encode the same", name, other)
		}
		seen[b] = name
	}
}
