package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trackhq/track/internal/pgerr"
)

// run connects, queries and prints what o asks for. An error after -timeout says so.
func (o *options) run(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	err := o.query(ctx, w)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (no answer within -timeout %s)", err, o.timeout)
	}
	return err
}

// query connects, queries and prints what o asks for.
func (o *options) query(ctx context.Context, w io.Writer) error {
	conn, err := pgx.Connect(ctx, o.dsn)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if o.command == "anomalies" {
		var metric *string
		if o.metric != "" {
			metric = &o.metric
		}
		as, err := readAnomalies(ctx, conn, o.schema, metric, o.from, o.to, o.step)
		if err != nil {
			return o.explain(err, "anomalies")
		}
		return listAnomalies(w, as, o)
	}
	points, err := readSeries(ctx, conn, o)
	if err != nil {
		return o.explain(err, "series")
	}
	if o.mark {
		o.markAnomalies(ctx, conn, points)
	}
	return Render(w, Chart{Title: o.title, Points: points, Step: o.step, Height: o.height, Width: o.width,
		Location: o.loc, Notes: o.notes})
}

// readSeries reads schema.series for o's metric, range, step, filter and zone.
func readSeries(ctx context.Context, conn *pgx.Conn, o *options) ([]Point, error) {
	rows, err := conn.Query(ctx, "SELECT time, value, complete FROM "+pgx.Identifier{o.schema}.Sanitize()+
		".series($1, $2, $3, $4, $5::jsonb, $6)", o.metric, o.from, o.to, o.step.interval(), o.filter, o.tz)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Point, error) {
		var p Point
		err := r.Scan(&p.Time, &p.Value, &p.Complete)
		return p, err
	})
}

// anomaly is one row of track.anomalies.
type anomaly struct {
	Time     time.Time
	Metric   string
	Value    float64
	Expected *float64
	Lower    *float64
	Upper    *float64
	Score    float64
	Kind     string
}

// readAnomalies reads schema.anomalies for the range and step, of one metric or of all (nil).
func readAnomalies(ctx context.Context, conn *pgx.Conn, schema string, metric *string, from, to time.Time, step span) ([]anomaly, error) {
	rows, err := conn.Query(ctx, `SELECT time, metric, value, expected, lower, upper, score, kind FROM `+
		pgx.Identifier{schema}.Sanitize()+`.anomalies($1, $2, $3, $4) ORDER BY time, score DESC, metric`,
		from, to, step.interval(), metric)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[anomaly])
}

// markAnomalies marks the points track.anomalies flags for the chart's metric. Anomalies are
// judged on a metric's total, so a chart with a filter is not marked. A database that cannot
// answer (no migration 007 yet, a step anomalies() refuses, no grant) leaves the chart unmarked
// with a note saying why: the chart itself is still right.
func (o *options) markAnomalies(ctx context.Context, conn *pgx.Conn, points []Point) {
	if o.filtered {
		o.notes = append(o.notes, "anomalies are judged on the metric's total, so a chart with -filter marks none (trackchart anomalies -metric "+o.metric+" lists them)")
		return
	}
	as, err := readAnomalies(ctx, conn, o.schema, &o.metric, o.from, o.to, o.step)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		o.notes = append(o.notes, "anomalies not marked: "+pgerr.Text(pgErr))
		return
	} else if err != nil {
		o.notes = append(o.notes, "anomalies not marked: "+err.Error())
		return
	}
	at := make(map[int64]int, len(points))
	for i, p := range points {
		at[p.Time.UnixMicro()] = i
	}
	unmatched := 0
	for _, a := range as {
		i, ok := at[a.Time.UnixMicro()]
		switch {
		case !ok:
			unmatched++
		case points[i].Anomaly == "" || a.Score > points[i].Score:
			points[i].Anomaly, points[i].Score = a.Kind, a.Score
		}
	}
	if unmatched > 0 {
		o.notes = append(o.notes, fmt.Sprintf("%d flagged %s not marked: track.anomalies aligns its steps to UTC, "+
			"and this chart's steps in %s start elsewhere; trackchart anomalies lists them", unmatched,
			plural(unmatched, "step", "steps"), o.tz))
	}
}

// argumentWords map the words of an invalid_parameter_value message to the flag at fault.
var argumentWords = regexp.MustCompile(`\b(step|since|until|range|tz|time zone|zone|filter|metric)\b`)

// explain turns an error of the query function fn into one that says what to do: the flag at
// fault for the database's refusals (its message and hint), trackctl migrate for a schema that
// lacks the function.
func (o *options) explain(err error, fn string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("querying %s.%s: %w", o.schema, fn, err)
	}
	text := pgerr.Text(pgErr)
	switch pgErr.Code {
	case pgerrcode.UndefinedObject:
		return flagError("metric", "%s", text)
	case pgerrcode.InvalidParameterValue, pgerrcode.InvalidTextRepresentation, pgerrcode.InvalidDatetimeFormat:
		return usageError{err: fmt.Errorf("%s: %s", o.flagFor(pgErr), text)}
	case pgerrcode.InvalidSchemaName:
		return flagError("schema", "%s", text)
	case pgerrcode.UndefinedFunction:
		migration := map[string]string{"series": "006", "anomalies": "007"}[fn]
		return fmt.Errorf("schema %s has no %s() that trackchart can call (%s): it lacks migration %s; "+
			"run trackctl migrate as the schema's owner", o.schema, fn, text, migration)
	case pgerrcode.InsufficientPrivilege:
		return fmt.Errorf("%s; the role needs EXECUTE on %s.%s (trackctl grants prints the analyst's grants)", text, o.schema, fn)
	}
	return fmt.Errorf("querying %s.%s: %s (SQLSTATE %s)", o.schema, fn, text, pgErr.Code)
}

// flagFor names the flag an argument error of the database is about: the column the error names,
// or else the first argument its message names.
func (o *options) flagFor(e *pgconn.PgError) string {
	word := e.ColumnName
	if word == "" {
		msg := e.Message
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			msg = rest // "series: step ..." names the function first
		}
		word = argumentWords.FindString(msg)
	}
	switch word {
	case "step", "filter", "metric":
		return "-" + word
	case "tz", "time zone", "zone":
		return "-tz"
	case "until":
		return "-to"
	case "since", "range":
		if o.fromSet {
			return "-from"
		}
		return "-since"
	}
	return "-since, -step or -tz"
}
