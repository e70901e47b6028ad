package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPhasesHaveAnAttackAndADipToZero(t *testing.T) {
	cycle := 100 * time.Second
	cases := []struct {
		at     time.Duration
		name   string
		checks float64
	}{
		{0, "steady", 1},
		{39 * time.Second, "steady", 1},
		{41 * time.Second, "card-testing attack", 2},
		{54 * time.Second, "card-testing attack", 2},
		{60 * time.Second, "steady", 1},
		{76 * time.Second, "processor outage", 0},
		{89 * time.Second, "processor outage", 0},
		{95 * time.Second, "steady", 1},
		{141 * time.Second, "card-testing attack", 2},
	}
	for _, c := range cases {
		p := phaseAt(c.at, cycle)
		assert.Equal(t, c.name, p.name, "at %v", c.at)
		assert.Equal(t, c.checks, p.checks, "at %v", c.at)
	}
}

func TestFraudShareFollowsThePhase(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []phase{{"steady", 1, 0.02}, {"card-testing attack", 2, 0.35}} {
		var checked, fraudulent int64
		for range 20000 {
			c, f := check(rng, p)
			checked += c
			fraudulent += f
		}
		assert.EqualValues(t, 20000, checked)
		assert.InDelta(t, p.fraudRate, float64(fraudulent)/float64(checked), 0.01, p.name)
	}
}
