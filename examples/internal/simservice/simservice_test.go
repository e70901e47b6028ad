package simservice

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPoissonMeanIsLambda(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, lambda := range []float64{0.5, 2, 6} {
		const draws = 20000
		total := 0
		for i := 0; i < draws; i++ {
			total += Poisson(rng, lambda)
		}
		assert.InDelta(t, lambda, float64(total)/draws, lambda*0.05, "lambda %v", lambda)
	}
	assert.Zero(t, Poisson(rng, 0))
	assert.Zero(t, Poisson(rng, -1))
}
