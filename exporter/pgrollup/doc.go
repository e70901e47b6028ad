//go:generate mdatagen metadata.yaml

// Package pgrollup is a Collector exporter (type pgrollup) that counts monotonic Sum data points,
// delta and cumulative (from per-stream state kept in Postgres), into per-minute, per-hour and
// per-day rollup tables in Postgres, exactly once, with retention, and creates the views
// (track.minutely, track.hourly, track.daily) and the function track.series that are the product's
// query API. See README.md for the configuration, the semantics and the SQL.
package pgrollup
