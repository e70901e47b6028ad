//go:build !track_portable

package track

import _ "unsafe" // for go:linkname

// procPin and procUnpin pin the goroutine to its processor and return the
// processor's id, so an add lands on that processor's own cell. They are
// runtime internals that the runtime keeps linkable for widely used packages
// (go.dev/issue/67401). Build with -tags track_portable to avoid them.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()
