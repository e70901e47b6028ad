//go:generate mdatagen metadata.yaml

// Package pgrollup is a Collector exporter (type pgrollup) that writes into Postgres, exactly
// once, with retention:
//   - metrics: monotonic Sum data points, delta and cumulative (from per-stream state kept in
//     Postgres), counted into per-minute, per-hour and per-day rollup tables;
//   - logs: product events (log records with an event name) stored raw in the events table (one
//     partition per UTC day) and counted, as the metric event.<name>, in the same rollups.
//
// It creates the views (track.minutely, track.hourly, track.daily, track.event_errors) and the
// functions track.series and track.funnel that are the product's query API. The schema is defined
// in internal/schema (resolutions, migrations and statements); cmd/trackctl applies it for schema
// owners. See README.md for the configuration, the semantics and the SQL.
package pgrollup
