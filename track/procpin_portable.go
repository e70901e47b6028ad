//go:build track_portable

package track

import "math/rand/v2"

// procPin picks a random cell: portable, but cells then bounce between cores.
func procPin() int { return int(rand.Uint32()) }

func procUnpin() {}
