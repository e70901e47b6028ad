package main

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFunnelNarrowsAtEveryStep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	reached := run(ctx, 400, 1000, rand.New(rand.NewPCG(1, 2)))
	assert.Greater(t, reached[0], int64(200))
	for i := 1; i < len(reached); i++ {
		assert.Less(t, reached[i], reached[i-1], "fewer visitors reach step %d than step %d", i+1, i)
		assert.Positive(t, reached[i])
	}
}
