package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Status is what a schema owner checks: the applied and pending migrations, the retention each
// resolution has recorded (by the collectors that wrote last), and the exact row count of each
// table.
type Status struct {
	Applied []Applied
	// Pending are the embedded migrations not applied yet.
	Pending []Migration
	// Retention is the resolutions table, finest first; empty before migration 001.
	Retention []RecordedRetention
	// Rows holds the exact row count of each table, in Tables order; empty while a migration is
	// pending.
	Rows []TableRows
}

// RecordedRetention is one row of the resolutions table.
type RecordedRetention struct {
	Name             string
	Width, Retention time.Duration
}

// TableRows is the number of rows of one table.
type TableRows struct {
	Table string
	Rows  int64
}

// Tables lists the tables Status counts: the series, the rollups and totals of each resolution,
// the events (all partitions), the request keys, the cumulative streams, and the liveness records
// (the collectors' spans and the sources).
func Tables() []string {
	out := []string{"series"}
	for _, r := range Resolutions {
		out = append(out, r.Table, r.Totals)
	}
	return append(out, "events", "item_keys", "cumulative_streams", "collector_spans", "source_seen")
}

// ReadStatus reads the status of schema through conn. Row counts are exact (count(*)), so they
// take a full scan of each table; they are read only when every migration is applied.
func ReadStatus(ctx context.Context, conn *pgx.Conn, schema string) (Status, error) {
	var st Status
	migs, err := Load(schema)
	if err != nil {
		return st, err
	}
	var exists bool
	if err := conn.QueryRow(ctx, render("table_exists", "", nil), Quote(schema)+".schema_migrations").Scan(&exists); err != nil {
		return st, fmt.Errorf("reading status: %w", err)
	}
	if exists {
		if st.Applied, err = ListApplied(ctx, conn, schema); err != nil {
			return st, err
		}
	}
	applied := make(map[int]bool, len(st.Applied))
	for _, a := range st.Applied {
		applied[a.Version] = true
	}
	for _, m := range migs {
		if !applied[m.Version] {
			st.Pending = append(st.Pending, m)
		}
	}
	if !applied[1] {
		return st, nil
	}
	rows, err := conn.Query(ctx, render("retention", Quote(schema), nil))
	if err != nil {
		return st, fmt.Errorf("reading retention: %w", err)
	}
	st.Retention, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RecordedRetention, error) {
		var rr RecordedRetention
		err := r.Scan(&rr.Name, &rr.Width, &rr.Retention)
		return rr, err
	})
	if err != nil {
		return st, fmt.Errorf("reading retention: %w", err)
	}
	if len(st.Pending) > 0 {
		return st, nil
	}
	for _, table := range Tables() {
		var n int64
		if err := conn.QueryRow(ctx, render("count", Quote(schema), map[string]any{"Table": table})).Scan(&n); err != nil {
			return st, fmt.Errorf("counting the rows of %s: %w", table, err)
		}
		st.Rows = append(st.Rows, TableRows{table, n})
	}
	return st, nil
}
