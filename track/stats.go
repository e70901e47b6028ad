package track

import "sync/atomic"

// Statistics reports what a tracker did with the counts it was given. All
// fields count from the tracker's creation (for the package-level tracker,
// from process start).
type Statistics struct {
	// PointsExported is the number of data points the collector accepted.
	PointsExported uint64
	// ExportFailures is the number of export attempts that failed; each
	// failed export is kept in the backlog and attempted again.
	ExportFailures uint64
	// PointsInBacklog is the number of data points waiting in the backlog now.
	PointsInBacklog int64
	// PointsDropped is the number of data points given up on: dropped from a
	// full backlog, or still undelivered when Shutdown's context ended.
	PointsDropped uint64
	// Refused is the number of calls refused for an invalid name, a negative
	// value or too many names.
	Refused uint64
}

type exportStats struct {
	exported atomic.Uint64
	failures atomic.Uint64
	backlog  atomic.Int64
	dropped  atomic.Uint64
}
