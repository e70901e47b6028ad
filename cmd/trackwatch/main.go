package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trackhq/track/internal/conventions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	var usage *usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &usage):
		if !usage.printed {
			fmt.Fprintln(os.Stderr, "trackwatch:", err)
		}
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "trackwatch:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag value: the command exits 2, as the flag package does for a bad flag.
// printed tells that the flag package already printed it, with the usage.
type usageError struct {
	msg     string
	printed bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// config is what the flags say.
type config struct {
	dsn, schema, webhook, metric, state string
	interval, endAfter, retryFor        time.Duration
	timeout                             time.Duration
	once                                bool
	loc                                 *time.Location
}

// parse reads the flags. Secrets (the DSN, the webhook URL) come from the environment by default
// and are never printed: not as flag defaults in -h, not in errors.
func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("trackwatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: trackwatch -webhook URL [-dsn DSN] [flags]\n\n"+
			"Polls track.anomalies_now and posts JSON with a Slack-compatible \"text\" to the webhook,\n"+
			"once when an anomaly of a metric starts and once when it ends.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.dsn, "dsn", "", "Postgres connection string; a read-only analyst role is enough (default $TRACK_PG_DSN)")
	fs.StringVar(&c.schema, "schema", "track", "schema of the track views and functions")
	fs.StringVar(&c.webhook, "webhook", "", "http(s) URL the messages are posted to, e.g. a Slack incoming webhook (default $TRACK_WEBHOOK_URL)")
	fs.StringVar(&c.metric, "metric", "", "watch only this metric (default: every metric)")
	fs.StringVar(&c.state, "state", "", "file that keeps the open anomalies across restarts (default: memory only; see the README)")
	fs.DurationVar(&c.interval, "interval", 30*time.Second, "time between polls")
	fs.DurationVar(&c.endAfter, "end-after", 2*time.Minute, "an anomaly ends once it has been absent from the view this long")
	fs.DurationVar(&c.retryFor, "retry-for", time.Minute, "how long to retry one message when the webhook fails")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on one query and on one webhook request")
	fs.BoolVar(&c.once, "once", false, "poll once, post, and exit (for cron, with -state)")
	tz := fs.String("tz", "UTC", "time zone of the times in the messages (IANA name, or Local)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, &usageError{msg: err.Error(), printed: true}
	}
	if fs.NArg() > 0 {
		return c, usagef("unexpected arguments %q", fs.Args())
	}
	if c.dsn == "" {
		c.dsn = os.Getenv("TRACK_PG_DSN")
	}
	if c.webhook == "" {
		c.webhook = os.Getenv("TRACK_WEBHOOK_URL")
	}
	switch {
	case c.dsn == "":
		return c, usagef("-dsn is required (or set TRACK_PG_DSN)")
	case c.webhook == "":
		return c, usagef("-webhook is required (or set TRACK_WEBHOOK_URL)")
	case !conventions.ValidIdentifier(c.schema):
		return c, usagef("-schema %q is not a lowercase SQL identifier", c.schema)
	case c.interval <= 0:
		return c, usagef("-interval must be positive")
	case c.endAfter < 0:
		return c, usagef("-end-after must not be negative")
	case c.retryFor <= 0:
		return c, usagef("-retry-for must be positive")
	case c.timeout <= 0:
		return c, usagef("-timeout must be positive")
	}
	if u, err := url.Parse(c.webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, usagef("-webhook must be an http:// or https:// URL with a host (the value is not printed: it may hold a secret)")
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return c, usagef("-tz: %v", err)
	}
	c.loc = loc
	return c, nil
}

// run watches until ctx ends (or after one poll with -once), logging to stderr.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, time.Now().UTC().Format(time.RFC3339)+" trackwatch: "+format+"\n", a...)
	}
	pc, err := pgxpool.ParseConfig(c.dsn)
	if err != nil {
		// pgx's error quotes the DSN with the password masked only on a best effort.
		return usagef("-dsn cannot be parsed as a Postgres connection string (the value is not printed: it may hold a password)")
	}
	pc.MaxConns = 1
	pc.ConnConfig.RuntimeParams["application_name"] = "trackwatch"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer pool.Close()

	hook := &webhook{url: c.webhook, client: &http.Client{Timeout: c.timeout}, retryFor: c.retryFor,
		firstWait: time.Second, maxWait: 30 * time.Second, logf: logf}
	w := newWatcher(loggingPoster{hook, logf}, c.endAfter, c.loc, logf)
	if c.state != "" {
		if err := w.load(c.state, time.Now()); err != nil {
			return err
		}
	}
	what := "every metric"
	if c.metric != "" {
		what = "metric " + c.metric
		qctx, cancel := context.WithTimeout(ctx, c.timeout)
		err := checkMetric(qctx, pool, c.schema, c.metric)
		cancel()
		if errors.Is(err, errUnknownMetric) {
			return usagef("-metric: %v", err)
		}
		if err != nil {
			return err
		}
	}
	every := "every " + c.interval.String()
	if c.once {
		every = "once"
	}
	logf("watching %s.anomalies_now (%s) %s, posting to %s", c.schema, what, every, redactURL(c.webhook))

	poll := func() error {
		qctx, cancel := context.WithTimeout(ctx, c.timeout)
		rows, err := anomaliesNow(qctx, pool, c.schema, c.metric)
		cancel()
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UndefinedTable {
				err = fmt.Errorf("%w (the schema is older than migration 7: the collector applies it when it starts, or run trackctl migrate)", err)
			}
			return err
		}
		changed, err := w.step(ctx, time.Now(), rows)
		if changed && c.state != "" {
			err = errors.Join(err, w.save(c.state))
		}
		return err
	}
	if c.once {
		return poll()
	}
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		if err := poll(); err != nil && ctx.Err() == nil {
			logf("%v", err)
		}
		select {
		case <-ctx.Done():
			logf("stopping; open anomalies: %d", len(w.open))
			return nil
		case <-tick.C:
		}
	}
}

// loggingPoster logs each message it delivered.
type loggingPoster struct {
	p    poster
	logf func(format string, args ...any)
}

func (l loggingPoster) Post(ctx context.Context, m Message) error {
	if err := l.p.Post(ctx, m); err != nil {
		return err
	}
	l.logf("posted: %s %s %s", m.Metric, m.Kind, m.Event)
	return nil
}
