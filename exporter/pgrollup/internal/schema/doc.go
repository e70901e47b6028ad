// Package schema owns pgrollup's Postgres schema: the rollup resolutions (defined once, in
// Resolutions, with the expiry rule Resolution.Cutoff), the embedded numbered migrations
// (migrations/, each applied in a transaction that records its version), every other statement the
// exporter and trackctl send (rendered from the embedded templates in sql/ with text/template; the
// per-resolution statements from one template each), the grants of the writer and analyst roles,
// and the status a schema owner reads.
//
// Migrations are text/templates too, with {{schema}} and {{list ...}}: a migration that creates
// something per resolution spells out its own list, so that an applied migration never changes
// meaning when Resolutions does (TestMigrationsUnchanged pins 001 to 005). The nine copies of the
// series function's query in 001 and 003 are such applied migrations and stay as they are; 006
// generates its copies from its own list.
package schema
