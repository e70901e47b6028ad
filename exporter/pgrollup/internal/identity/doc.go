// Package identity encodes what makes a rollup series: its canonical identity (metric, service and
// attributes as JSON with sorted keys), the stable key the series table stores for it, and the
// pieces of the cheaper lookup key that the exporter's parsers build for every point.
//
// The canonical identity is uvarint(len(metric)) metric uvarint(len(service)) service, then the
// attributes as a JSON object. Its key (Key) is stored in Postgres: it must never change.
package identity
