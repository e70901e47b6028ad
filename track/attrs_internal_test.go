package track

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel/attribute"
)

func TestValueLayoutIsKnown(t *testing.T) {
	assert.True(t, valueLayoutKnown, "attribute.Value's layout changed: the fast path is off until valueMirror follows it")
}

func TestHashAttrsIsOrderFreeAndTypeAware(t *testing.T) {
	a, b := attribute.String("result", "ok"), attribute.Int64("shard", 3)
	h1, ok1 := hashAttrs([]attribute.KeyValue{a, b})
	h2, ok2 := hashAttrs([]attribute.KeyValue{b, a})
	assert.True(t, ok1 && ok2)
	assert.Equal(t, h1, h2)
	hi, _ := hashAttrs([]attribute.KeyValue{attribute.Int64("n", 1)})
	hb, _ := hashAttrs([]attribute.KeyValue{attribute.Bool("n", true)})
	assert.NotEqual(t, hi, hb, "the type is part of the hash")
	_, ok := hashAttrs([]attribute.KeyValue{attribute.StringSlice("s", []string{"x"})})
	assert.False(t, ok, "non-scalar values take the slow path")
	assert.True(t, sameAttrs([]attribute.KeyValue{a, b}, []attribute.KeyValue{attribute.String("result", "o"+"k"[:1]), b}))
	assert.False(t, sameAttrs([]attribute.KeyValue{a, b}, []attribute.KeyValue{b, a}))
	assert.False(t, sameAttrs([]attribute.KeyValue{attribute.Int64("n", 1)}, []attribute.KeyValue{attribute.Bool("n", true)}))
}
