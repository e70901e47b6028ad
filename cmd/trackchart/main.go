package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trackhq/track/internal/conventions"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // connecting or querying failed, or the schema lacks what trackchart needs
	exitUsage   = 2 // the command line is wrong: a flag, or a metric, step, range or zone the database refused
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// execute runs trackchart with args and the environment of lookupEnv, writes its output to stdout
// and its errors to stderr, and returns the exit status. No password of the DSN reaches either:
// errors are scrubbed of it, whoever wrote them (pgx included).
func execute(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	envDSN, _ := lookupEnv(envDSN)
	hidden := secrets(envDSN)
	o, err := parse(args, lookupEnv, stdout)
	if err == nil {
		hidden = append(hidden, secrets(o.dsn)...)
		err = o.run(ctx, stdout)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	msg := scrub(err.Error(), hidden)
	fmt.Fprintln(stderr, "trackchart:", msg)
	var u usageError
	if errors.As(err, &u) {
		if u.help {
			fmt.Fprintln(stderr, "run trackchart -h for the flags")
		}
		return exitUsage
	}
	return exitFailure
}

// envDSN is the environment variable -dsn defaults to.
const envDSN = "TRACK_PG_DSN"

// usageError is an error in the command line: execute exits with exitUsage. Its message starts
// with the flag at fault.
type usageError struct {
	err  error
	help bool // point the user at -h
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// flagError returns a usageError for the flag named name (without its dash).
func flagError(name, format string, a ...any) error {
	return usageError{err: fmt.Errorf("-"+name+": "+format, a...)}
}

// options is a parsed command line.
type options struct {
	command  string // "chart" or "anomalies"
	dsn      string
	schema   string
	metric   string
	from     time.Time
	to       time.Time
	fromSet  bool // -from given: errors about the range name it instead of -since
	step     span
	filter   string
	filtered bool // -filter is not {}
	tz       string
	loc      *time.Location
	height   int
	width    int
	title    string
	mark     bool
	timeout  time.Duration
	notes    []string // printed under the chart
}

const usageHead = `trackchart draws a track counter as a bar chart in the terminal, or lists its anomalies.

usage:
  trackchart -metric NAME [flags]             draw the metric (marks anomalous steps)
  trackchart anomalies [-metric NAME] [flags]  list the anomalous steps (of every metric without -metric)

Durations (-since, -step) take the units s, m, h, d (a day), w (7 days), mo and y: 90s, 15m, 6h, 7d,
2w, 1mo, 1d12h. A step of a day or more starts at midnight in -tz, a week on Monday, a month on the
first. -from and -to take RFC 3339 times, or 2006-01-02 and 2006-01-02T15:04 in -tz.

Exit status: 0 drawn or listed (also with nothing counted), 1 connecting or querying failed,
2 the command line is wrong (a flag, or a metric, step, range or zone the database refused).

flags:
`

// parse reads args. On -h or --help it prints the usage to stdout and returns flag.ErrHelp.
func parse(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) (*options, error) {
	o := &options{command: "chart"}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "anomalies":
			o.command = args[0]
		case "help":
			args = []string{"-h"}
		default:
			return nil, usageError{err: fmt.Errorf("unknown command %q: the commands are anomalies, or none to draw a chart", args[0]), help: true}
		}
		if o.command != "chart" {
			args = args[1:]
		}
	}
	fs := flag.NewFlagSet("trackchart", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // execute prints the errors; -h prints the usage below
	fs.Usage = func() {}
	envValue, _ := lookupEnv(envDSN)
	dsnHelp := "Postgres connection string (default $" + envDSN + ")"
	if envValue != "" {
		dsnHelp += "; now " + redactDSN(envValue)
	}
	dsn := fs.String("dsn", "", dsnHelp)
	fs.StringVar(&o.schema, "schema", "track", "schema of the track views and functions")
	fs.StringVar(&o.metric, "metric", "", map[string]string{
		"chart":     "counter to draw (required)",
		"anomalies": "counter whose anomalies to list (default every metric)",
	}[o.command])
	since := &spanFlag{}
	fs.Var(since, "since", "length of the range, a `duration` ending at -to or now (default 60 steps, 30 of days up to 11 weeks, 12 of months: 1h per 1m)")
	from := fs.String("from", "", "start of the range, a `time` (instead of -since)")
	to := fs.String("to", "", "end of the range, a `time` (default now)")
	step := &spanFlag{span: span{clock: time.Minute}}
	fs.Var(step, "step", "width of one step, a `duration`")
	tz := fs.String("tz", "", map[string]string{
		"chart":     "`zone` (IANA name) of the steps and of the printed times (default the environment's: $TZ or /etc/localtime)",
		"anomalies": "`zone` (IANA name) of the printed times; track.anomalies aligns its steps to UTC (default the environment's: $TZ or /etc/localtime)",
	}[o.command])
	utc := fs.Bool("utc", false, "same as -tz UTC")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "bound on connecting and querying")
	if o.command == "chart" {
		fs.StringVar(&o.filter, "filter", "{}", `JSON object the series' attributes (and "service") must contain, e.g. {"service":"login-service"}`)
		fs.IntVar(&o.height, "height", 8, "rows of bars")
		fs.IntVar(&o.width, "width", 120, "most columns the bars may take (at least 8); steps are merged beyond")
		fs.StringVar(&o.title, "title", "", "chart title (default the metric and the filter)")
		fs.BoolVar(&o.mark, "mark", true, "mark the steps track.anomalies flags (-mark=false to skip)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageHead)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil, err
		}
		// The flag package names the flag: "invalid value "7x" for flag -since: ...".
		return nil, usageError{err: err, help: true}
	}
	if fs.NArg() > 0 {
		return nil, usageError{err: fmt.Errorf("unexpected arguments %q: flags come after the command", fs.Args()), help: true}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o.dsn = *dsn
	if !set["dsn"] {
		o.dsn = envValue
	}
	switch {
	case o.metric == "" && o.command == "chart":
		return nil, usageError{err: errors.New("-metric is required: name the counter to draw, e.g. -metric new-signup"), help: true}
	case o.dsn == "":
		return nil, usageError{err: fmt.Errorf("-dsn is required (or set %s)", envDSN)}
	}
	if _, err := pgconn.ParseConfig(o.dsn); err != nil {
		return nil, flagError("dsn", "%w", err)
	}
	if !conventions.ValidIdentifier(o.schema) {
		return nil, flagError("schema", "%q is not a lowercase SQL identifier", o.schema)
	}
	if o.timeout <= 0 {
		return nil, flagError("timeout", "must be positive, got %s", o.timeout)
	}
	if err := o.parseZone(lookupEnv, *tz, set["tz"], *utc); err != nil {
		return nil, err
	}
	o.step = step.span.calendarDays()
	if !set["since"] {
		since.span = defaultSince(o.step)
	}
	if err := o.parseRange(*from, *to, since.span, set["since"]); err != nil {
		return nil, err
	}
	if o.command != "chart" {
		return o, nil
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(o.filter), &obj); err != nil || obj == nil {
		return nil, flagError("filter", "%s is not a JSON object such as {\"service\":\"login-service\"}", o.filter)
	}
	if o.height < 1 {
		return nil, flagError("height", "must be at least 1, got %d", o.height)
	}
	if o.width < 8 {
		return nil, flagError("width", "must be at least 8, got %d", o.width)
	}
	o.filtered = len(obj) > 0
	if o.title == "" {
		o.title = o.metric
		if o.filtered {
			o.title += " " + o.filter
		}
	}
	return o, nil
}

// parseZone sets the zone from -tz or -utc, else from the environment.
func (o *options) parseZone(lookupEnv func(string) (string, bool), tz string, tzSet, utc bool) error {
	switch {
	case tzSet && utc:
		return usageError{err: errors.New("-utc and -tz: give one of them")}
	case utc:
		tz = "UTC"
	case !tzSet:
		var note string
		tz, note = environmentZone(lookupEnv)
		if note != "" {
			o.notes = append(o.notes, note)
		}
		loc, err := loadZone(tz)
		if err != nil {
			return usageError{err: fmt.Errorf("the zone of the environment: %w; set -tz", err)}
		}
		o.tz, o.loc = tz, loc
		return nil
	}
	loc, err := loadZone(tz)
	if err != nil {
		return flagError("tz", "%w", err)
	}
	o.tz, o.loc = tz, loc
	return nil
}

// defaultSince is the range drawn without -since: 60 steps shorter than a day (an hour per minute),
// 30 steps of days but no more than 11 weeks, 12 of months: enough bars to see a shape, few enough
// to fit a terminal. 11 weeks keep the first local midnight within the 90 days hours are kept by
// default, which days outside UTC need (series() refuses them on day rollups, whose days are UTC's).
func defaultSince(step span) span {
	switch {
	case step.months > 0:
		return step.times(12)
	case step.days > 0:
		return step.times(max(1, min(30, 77/step.days)))
	}
	return step.times(60)
}

// parseRange sets from and to from -from, -to and -since.
func (o *options) parseRange(from, to string, since span, sinceSet bool) error {
	o.to = time.Now()
	if to != "" {
		t, err := parseTime(to, o.loc)
		if err != nil {
			return flagError("to", "%w", err)
		}
		o.to = t
	}
	o.from = since.before(o.to.In(o.loc))
	if from != "" {
		if sinceSet {
			return usageError{err: errors.New("-from and -since: give one of them")}
		}
		t, err := parseTime(from, o.loc)
		if err != nil {
			return flagError("from", "%w", err)
		}
		o.from, o.fromSet = t, true
	}
	if !o.to.After(o.from) {
		return usageError{err: fmt.Errorf("-to (%s) must be after -from (%s)", o.to.Format(time.RFC3339), o.from.Format(time.RFC3339))}
	}
	return nil
}

// timeForms are the forms -from and -to take besides RFC 3339; they are read in -tz.
var timeForms = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

func parseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, f := range timeForms {
		if t, err := time.ParseInLocation(f, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-21T22:10:00Z), or 2026-11-21 or 2026-11-21T22:10 in -tz", s)
}
