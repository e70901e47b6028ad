package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trackhq/track/exporter/pgrollup"

	"github.com/trackhq/track/internal/conventions"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trackctl:", err)
		os.Exit(1)
	}
}

// errPending is returned by status when migrations are pending.
var errPending = errors.New("migrations are pending: run trackctl migrate as the schema owner")

const usage = "usage: trackctl migrate|grants|status [flags] (trackctl COMMAND -h for the flags)"

// run runs the command in args and writes its output to w.
func run(ctx context.Context, args []string, w io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("trackctl "+args[0], flag.ContinueOnError)
	fs.SetOutput(w)
	// No flag default from the environment: -h prints defaults, and the DSN may hold a password.
	dsn := fs.String("dsn", "", "Postgres connection string of the schema owner (default $TRACK_PG_DSN)")
	schemaName := fs.String("schema", "track", "schema the exporter writes into (its schema key)")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on the whole command")
	var writer, analyst *string
	var apply *bool
	switch args[0] {
	case "migrate", "status":
	case "grants":
		writer = fs.String("writer", "track_writer", "role of the collectors")
		analyst = fs.String("analyst", "track_analyst", "read-only role of the analysts and dashboards")
		apply = fs.Bool("apply", false, "run the grants (in one transaction) instead of printing them")
	default:
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *dsn == "" {
		*dsn = os.Getenv("TRACK_PG_DSN")
	}
	if !conventions.ValidIdentifier(*schemaName) {
		return fmt.Errorf("-schema %q is not a lowercase SQL identifier", *schemaName)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if args[0] == "grants" {
		for _, r := range []string{*writer, *analyst} {
			if !conventions.ValidIdentifier(r) {
				return fmt.Errorf("role %q is not a lowercase SQL identifier", r)
			}
		}
		grants := pgrollup.Grants(*schemaName, *writer, *analyst)
		if !*apply {
			for _, g := range grants {
				fmt.Fprintln(w, g+";")
			}
			return nil
		}
		return withConn(ctx, *dsn, func(conn *pgx.Conn) error { return applyGrants(ctx, conn, grants, w) })
	}
	if args[0] == "migrate" {
		return migrate(ctx, *dsn, *schemaName, w)
	}
	return withConn(ctx, *dsn, func(conn *pgx.Conn) error { return status(ctx, conn, *schemaName, w) })
}

func withConn(ctx context.Context, dsn string, f func(*pgx.Conn) error) error {
	if dsn == "" {
		return errors.New("-dsn is required (or set TRACK_PG_DSN)")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return f(conn)
}

func migrate(ctx context.Context, dsn, schemaName string, w io.Writer) error {
	if dsn == "" {
		return errors.New("-dsn is required (or set TRACK_PG_DSN)")
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer pool.Close()
	applied, err := pgrollup.Migrate(ctx, pool, schemaName)
	for _, name := range applied {
		fmt.Fprintln(w, "applied", name)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(w, "schema %s is up to date\n", schemaName)
	}
	return nil
}

func applyGrants(ctx context.Context, conn *pgx.Conn, grants []string, w io.Writer) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, g := range grants {
			if _, err := tx.Exec(ctx, g); err != nil {
				return fmt.Errorf("%s: %w", g, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("applying grants: %w", err)
	}
	fmt.Fprintf(w, "applied %d grants\n", len(grants))
	return nil
}

func status(ctx context.Context, conn *pgx.Conn, schemaName string, w io.Writer) error {
	st, err := pgrollup.ReadStatus(ctx, conn, schemaName)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "schema %s\n\nmigration\tapplied at\n", schemaName)
	for _, a := range st.Applied {
		fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.At.UTC().Format(time.RFC3339))
	}
	for _, m := range st.Pending {
		fmt.Fprintf(tw, "%s\tpending\n", m.Name)
	}
	if len(st.Retention) > 0 {
		fmt.Fprintf(tw, "\nresolution\twidth\tretention\n")
		for _, r := range st.Retention {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, period(r.Width), period(r.Retention))
		}
	}
	if len(st.Rows) > 0 {
		fmt.Fprintf(tw, "\ntable\trows\n")
		for _, r := range st.Rows {
			fmt.Fprintf(tw, "%s\t%d\n", r.Table, r.Rows)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Pending) > 0 {
		return errPending
	}
	return nil
}

// period formats d as the exporter's configuration does ("14d", "3y", "1h0m0s").
func period(d time.Duration) string {
	b, _ := pgrollup.Period(d).MarshalText()
	return string(b)
}
