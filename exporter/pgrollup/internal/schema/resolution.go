package schema

import "time"

// Resolution is one rollup resolution: the width of its buckets, its tables and view, and its
// default retention. Resolutions lists them; everything the write path, retention and the
// configuration do per resolution is derived from that list.
//
// The migrations keep their own copies of the list (the tables, views and the resolutions table
// they create): a migration that has been applied never changes meaning. A new resolution is a
// new migration plus an entry here.
type Resolution struct {
	// Index is the resolution's position in Resolutions, and its number in the staging table.
	Index int
	// Name is the resolution's name in the resolutions table, the key of its retention in the
	// configuration (retention::<name>) and the value of the telemetry's resolution attribute.
	Name string
	// Width is the width of a bucket; buckets start at multiples of it since the Unix epoch.
	Width time.Duration
	// Table is the rollup table: one row per (series_id, time).
	Table string
	// Totals is the table of per-metric totals: one row per (metric, time).
	Totals string
	// View is the view analysts read the rollup table through.
	View string
	// DefaultRetention is how long rows are kept unless configured otherwise.
	DefaultRetention time.Duration
}

const day = 24 * time.Hour

// Resolutions are the rollup resolutions, finest first. Each coarser width is a multiple of the
// finer one, so that each coarser resolution is a pass over the finer one's rows.
var Resolutions = [3]Resolution{
	{0, "minute", time.Minute, "rollup_minute", "total_minute", "minutely", 14 * day},
	{1, "hour", time.Hour, "rollup_hour", "total_hour", "hourly", 90 * day},
	{2, "day", day, "rollup_day", "total_day", "daily", 3 * 365 * day},
}

// Cutoff returns the expiry cut of the resolution's buckets at now under retention: a bucket
// that starts at or before it has ended (start + Width) at or before now - retention, and is
// expired. Retention deletes such buckets, and the write path never writes them.
func (r Resolution) Cutoff(now time.Time, retention time.Duration) time.Time {
	return now.Add(-retention - r.Width)
}
