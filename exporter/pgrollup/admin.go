package pgrollup

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
)

// This file is the API of schema owners (cmd/trackctl uses it): what migrate_on_start does, the
// grants of the roles, and the schema's status.

// Migrate applies the migrations schema lacks, each in its own transaction that records its
// version, under an advisory lock (safe to run beside starting collectors), and returns the names
// of those it applied. It is what the exporter does at start with migrate_on_start: true.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schemaName string) ([]string, error) {
	done, err := schema.Migrate(ctx, pool, schemaName)
	names := make([]string, len(done))
	for i, m := range done {
		names[i] = m.Name
	}
	return names, err
}

// Grants returns the GRANT statements, one per element, that let the role writer run the
// exporter with migrate_on_start: false and the role analyst read the views, the series and
// funnel functions and the events but no table. The roles must exist; names are quoted.
func Grants(schemaName, writer, analyst string) []string {
	return schema.Grants(schemaName, writer, analyst)
}

// Status is a schema's applied and pending migrations, recorded retention and row counts.
type Status = schema.Status

// ReadStatus reads the status of schemaName through conn. The row counts are exact: each takes a
// scan of its table.
func ReadStatus(ctx context.Context, conn *pgx.Conn, schemaName string) (Status, error) {
	return schema.ReadStatus(ctx, conn, schemaName)
}
