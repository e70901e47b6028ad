package track

import "sync/atomic"

// Statistics reports what a tracker did with the counts it was given. All
// fields count from the tracker's creation (for the package-level tracker,
// from process start).
type Statistics struct {
	// PointsExported is the number of data points the collector accepted,
	// heartbeats not included.
	PointsExported uint64
	// ExportFailures is the number of export attempts, of counts, events or
	// heartbeats, that failed. A failed export of counts or events is kept
	// in the backlog and tried again; a failed heartbeat is not (the next
	// interval sends another).
	ExportFailures uint64
	// PointsInBacklog is the number of data points waiting in the backlog now.
	PointsInBacklog int64
	// PointsDropped is the number of data points given up on: dropped from a
	// full backlog, or still undelivered when Shutdown's context ended.
	PointsDropped uint64
	// EventsExported is the number of events the collector accepted.
	EventsExported uint64
	// EventsInBacklog is the number of events waiting in the backlog now.
	EventsInBacklog int64
	// EventsDropped is the number of events given up on: emitted before
	// Start or after Shutdown, dropped from a full queue or backlog, or
	// still undelivered when Shutdown's context ended.
	EventsDropped uint64
	// Refused is the number of calls refused for an invalid name, a negative
	// value or too many names, counters and events alike.
	Refused uint64
	// ActiveSeries is the number of series (name and attribute set,
	// overflow series included) kept in memory now: those not forgotten
	// after idling, see WithIdleIntervals.
	ActiveSeries int64
	// ActiveNames is the number of counter names kept in memory now.
	ActiveNames int64
	// FoldedIntoOverflow is the sum of the values counted into the
	// otel.metric.overflow=true series because their name had reached its
	// limit of active attribute sets (one per Increment, n per Add).
	FoldedIntoOverflow uint64
}

type exportStats struct {
	points   flowStats
	events   flowStats
	failures atomic.Uint64

	// eventsEmitted counts events handed to the logs SDK, so that Shutdown
	// can count those its batch processor dropped.
	eventsEmitted atomic.Uint64
}
