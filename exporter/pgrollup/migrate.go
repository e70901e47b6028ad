package pgrollup

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// migration is one embedded, numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// ErrSchemaOutdated is returned at start when migrate_on_start is false and the schema lacks
// migrations this exporter needs.
var ErrSchemaOutdated = errors.New("the schema lacks migrations this exporter needs")

// loadMigrations returns the embedded migrations in version order, with the schema substituted.
func loadMigrations(schema string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and an underscore", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: strings.ReplaceAll(string(b), "{{schema}}", quoteIdent(schema))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// migrate applies the pending migrations, each in its own transaction that records its version,
// while holding a session advisory lock keyed by the schema, so that collectors starting together
// apply each migration once. It is safe to run from several processes at once.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	migs, err := loadMigrations(schema)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	defer conn.Release()
	lockKey := "pgrollup-migrate:" + schema
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", lockKey); err != nil {
		return fmt.Errorf("migrating: taking the advisory lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must run even when ctx is done.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", lockKey)
	}()
	q := quoteIdent(schema)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+q+`;
CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("migrating: creating the schema: %w", err)
	}
	applied, err := appliedVersions(ctx, conn.Conn(), schema)
	if err != nil {
		return err
	}
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+q+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating: applying %s: %w", m.name, err)
		}
	}
	return nil
}

// checkMigrated returns ErrSchemaOutdated when some embedded migration is not recorded as applied.
func checkMigrated(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	migs, err := loadMigrations(schema)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("checking migrations: %w", err)
	}
	defer conn.Release()
	applied, err := appliedVersions(ctx, conn.Conn(), schema)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSchemaOutdated, err)
	}
	for _, m := range migs {
		if !applied[m.version] {
			return fmt.Errorf("%w: %s is not applied to schema %s (set migrate_on_start: true, or apply it as the schema owner)",
				ErrSchemaOutdated, m.name, schema)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, conn *pgx.Conn, schema string) (map[int]bool, error) {
	rows, err := conn.Query(ctx, "SELECT version FROM "+quoteIdent(schema)+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}
