package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPhaseHasABurstAndADipToZero(t *testing.T) {
	cycle := 60 * time.Second
	cases := []struct {
		at   time.Duration
		want float64
	}{
		{0, 1}, {29 * time.Second, 1}, {31 * time.Second, 3}, {39 * time.Second, 3},
		{41 * time.Second, 0}, {49 * time.Second, 0}, {51 * time.Second, 1}, {61 * time.Second, 1},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, phase(c.at, cycle), "at %v", c.at)
	}
}
