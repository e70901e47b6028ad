// Package schema owns pgrollup's Postgres schema: the rollup resolutions (defined once, in
// Resolutions), the embedded numbered migrations (migrations/, each applied in a transaction that
// records its version), and every other statement the exporter and trackctl send, rendered from
// the embedded templates in sql/ (text/template; the per-resolution statements from one template
// each). It also renders the grants of the writer and analyst roles.
package schema
