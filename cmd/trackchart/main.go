package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trackhq/track/internal/conventions"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trackchart:", err)
		os.Exit(1)
	}
}

// run parses args, queries the series and draws it on w.
func run(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("trackchart", flag.ContinueOnError)
	dsn := fs.String("dsn", os.Getenv("TRACK_PG_DSN"), "Postgres connection string (default $TRACK_PG_DSN)")
	schema := fs.String("schema", "track", "schema of the track views and functions")
	metric := fs.String("metric", "", "counter to draw (required)")
	since := fs.Duration("since", time.Hour, "range to draw, ending now (ignored with -from)")
	from := fs.String("from", "", "start of the range, RFC 3339")
	to := fs.String("to", "", "end of the range, RFC 3339 (default now)")
	step := fs.Duration("step", time.Minute, "width of one bar")
	filter := fs.String("filter", "{}", `JSON the series' attributes must contain, e.g. {"service":"login-service"}`)
	height := fs.Int("height", 8, "rows of bars")
	width := fs.Int("width", 120, "most columns the bars may take")
	title := fs.String("title", "", "chart title (default: the metric and the step)")
	utc := fs.Bool("utc", false, "print times in UTC instead of local time")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on connecting and querying")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *metric == "" {
		return errors.New("-metric is required")
	}
	if *dsn == "" {
		return errors.New("-dsn is required (or set TRACK_PG_DSN)")
	}
	if !conventions.ValidIdentifier(*schema) {
		return fmt.Errorf("-schema %q is not a lowercase SQL identifier", *schema)
	}
	if *step <= 0 || *height < 1 || *width < 8 {
		return errors.New("-step must be positive, -height at least 1 and -width at least 8")
	}
	end := time.Now()
	if *to != "" {
		t, err := time.Parse(time.RFC3339, *to)
		if err != nil {
			return fmt.Errorf("-to: %w", err)
		}
		end = t
	}
	start := end.Add(-*since)
	if *from != "" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return fmt.Errorf("-from: %w", err)
		}
		start = t
	}
	if !end.After(start) {
		return errors.New("the range is empty: -to must be after -from")
	}
	loc := time.Local
	if *utc {
		loc = time.UTC
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	points, err := query(ctx, *dsn, *schema, *metric, start, end, *step, *filter)
	if err != nil {
		return err
	}
	if *title == "" {
		*title = *metric
	}
	return Render(w, Chart{Title: *title, Points: points, Step: *step, Height: *height, Width: *width, Location: loc})
}

// query reads schema.series for the range.
func query(ctx context.Context, dsn, schema, metric string, start, end time.Time, step time.Duration, filter string) ([]Point, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT time, value FROM "+schema+".series($1, $2, $3, $4, $5::jsonb)",
		metric, start, end, step, filter)
	if err != nil {
		return nil, fmt.Errorf("querying %s.series: %w", schema, err)
	}
	points, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Point, error) {
		var p Point
		err := r.Scan(&p.Time, &p.Value)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s.series: %w", schema, err)
	}
	return points, nil
}
