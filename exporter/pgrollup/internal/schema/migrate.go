package schema

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
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migration is one embedded, numbered SQL file. A migration that has been released never changes:
// it keeps its own copy of everything it creates (the resolutions among them), so an applied
// migration means the same in every version.
type Migration struct {
	// Version is the number the file name starts with.
	Version int
	// Name is the file name, recorded in schema_migrations.
	Name string
	// SQL is the file's text rendered as a text/template (see renderMigration).
	SQL string
}

// renderMigration renders a migration file as a text/template with two functions: schema, the
// schema's quoted name ({{schema}}), and list, which makes a list of its arguments. A migration
// that creates something per resolution writes its own fixed copy of the resolutions with list,
// for example {{range list "minute" "hour" "day"}}...{{end}}, and never reads Resolutions: what it
// means must not change when the list does.
func renderMigration(name, text, schema string) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"schema": func() string { return Quote(schema) },
		"list":   func(s ...string) []string { return s },
	}).Parse(text)
	if err != nil {
		return "", fmt.Errorf("migration %s: %w", name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("migration %s: %w", name, err)
	}
	return b.String(), nil
}

// ErrOutdated is returned by Check when the schema lacks migrations this version needs.
var ErrOutdated = errors.New("the schema lacks migrations this exporter needs")

// Load returns the embedded migrations in version order, with the schema substituted.
func Load(schema string) ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var out []Migration
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
		sql, err := renderMigration(e.Name(), string(b), schema)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: sql})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share a version", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Quote returns the SQL identifier s quoted.
func Quote(s string) string { return pgx.Identifier{s}.Sanitize() }

// Migrate applies the pending migrations, each in its own transaction that records its version,
// while holding a session advisory lock keyed by the schema, so that collectors starting together
// apply each migration once. It is safe to run from several processes at once. It returns the
// migrations it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) ([]Migration, error) {
	migs, err := Load(schema)
	if err != nil {
		return nil, err
	}
	st := New(schema)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrating: %w", err)
	}
	defer conn.Release()
	lockKey := "pgrollup-migrate:" + schema
	if _, err := conn.Exec(ctx, st.Lock, lockKey); err != nil {
		return nil, fmt.Errorf("migrating: taking the advisory lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must run even when ctx is done.
		_, _ = conn.Exec(context.WithoutCancel(ctx), st.Unlock, lockKey)
	}()
	if _, err := conn.Exec(ctx, st.MigrationsTable); err != nil {
		return nil, fmt.Errorf("migrating: creating the schema: %w", err)
	}
	applied, err := appliedVersions(ctx, conn.Conn(), st)
	if err != nil {
		return nil, err
	}
	var done []Migration
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, st.RecordMigration, m.Version, m.Name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("migrating: applying %s: %w", m.Name, err)
		}
		done = append(done, m)
	}
	return done, nil
}

// Check returns an error wrapping ErrOutdated when some embedded migration is not recorded as
// applied in schema (or schema has no schema_migrations table).
func Check(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	migs, err := Load(schema)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("checking migrations: %w", err)
	}
	defer conn.Release()
	applied, err := appliedVersions(ctx, conn.Conn(), New(schema))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOutdated, err)
	}
	for _, m := range migs {
		if !applied[m.Version] {
			return fmt.Errorf("%w: %s is not applied to schema %s (set migrate_on_start: true, or run trackctl migrate as the schema owner)",
				ErrOutdated, m.Name, schema)
		}
	}
	return nil
}

// Applied is a migration recorded in schema_migrations.
type Applied struct {
	Version int
	Name    string
	At      time.Time
}

// ListApplied returns the migrations recorded as applied in schema, in version order.
func ListApplied(ctx context.Context, conn *pgx.Conn, schema string) ([]Applied, error) {
	rows, err := conn.Query(ctx, New(schema).Applied)
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Applied, error) {
		var a Applied
		err := r.Scan(&a.Version, &a.Name, &a.At)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	return out, nil
}

func appliedVersions(ctx context.Context, conn *pgx.Conn, st Statements) (map[int]bool, error) {
	rows, err := conn.Query(ctx, st.Applied)
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	applied := make(map[int]bool)
	var v int
	var name string
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&v, &name, &at}, func() error { applied[v] = true; return nil }); err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	return applied, nil
}
