// Command demo is what `make demo` runs once `make collector` has built bin/otelcol-track:
//
//  1. Postgres: TRACK_PG_DSN if set, else a throwaway cluster on a free loopback port
//     (internal/pgtest, removed on exit);
//  2. the collector (bin/otelcol-track --config examples/collector.yaml) on free loopback ports
//     (internal/harness), once its health check reports the pipeline running;
//  3. -history (DEMO_HISTORY_MINUTES, 300) minutes of per-minute history from examples/backfill, so
//     that the charts have something to show and the anomaly detector has the 3 hours of history it
//     needs before it judges a metric, then the login and payment services live for
//     -seconds (DEMO_SECONDS, 60), one traffic cycle each (a burst and a dip to zero), beside
//     examples/web-signup (-visitors (DEMO_VISITORS, 10) new visitors a second through a four-step
//     sign-up form, its waits compressed -speed (DEMO_SPEED, 4) times), which sends product events
//     (track.Event);
//  4. waits until Postgres holds exactly what each program reported (the JSON line of
//     simservice.Report) for every counter, and every event, then prints two charts
//     (cmd/trackchart), an analyst's SQL query with its result, the sign-up funnel (track.funnel)
//     and the most frequent errors (track.event_errors), and the README's incidents query: the
//     backfilled drop of signups and the card-testing attack, as track.anomalies sees them (it
//     refreshes the anomaly baselines first, as the collector does every hour);
//  5. runs every SQL statement of the README's "Queries for analysts" section against this data
//     (Grafana's time macros expanded for the last hour) and fails when one fails or names a
//     metric or an event the demo did not store: the README's queries are checked on each run.
//
// Everything it started is stopped on exit, on error and on Ctrl-C (SIGINT or SIGTERM): the
// services newest first, then the collector, then the throwaway cluster; nothing is left behind.
// With -keep (DEMO_KEEP=1, make demo KEEP=1) the throwaway cluster keeps running with the demo's
// data, unless the demo was interrupted; the demo prints its DSN and commands to try, and
// -stop (make demo-stop) stops and removes it. A new run stops the cluster a previous one kept.
// Its logs and the programs it built stay in .demo/ under the repository root.
//
// Usage (from anywhere in the repository):
//
//	go run ./examples/demo [-seconds 60] [-history 300] [-visitors 10] [-speed 4] [-keep]
//	go run ./examples/demo -stop
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trackhq/track/examples/internal/simservice"
	"github.com/trackhq/track/internal/harness"
	"github.com/trackhq/track/internal/pgtest"
)

// healthGate is the feature gate that makes health_check report the pipeline's component status,
// so that the collector is healthy only once pgrollup has connected and migrated.
const healthGate = "--feature-gates=+extension.healthcheck.useComponentStatus"

// Timeouts of the stops, as a Ctrl-C gives them: a service flushes to the collector while it still
// runs, then the collector drains its pipeline.
const (
	serviceStop   = 5 * time.Second
	collectorStop = 20 * time.Second
	// exactWait bounds the wait for Postgres to hold exactly what was counted.
	exactWait = 60 * time.Second
)

type settings struct {
	seconds  int
	history  int
	visitors float64
	speed    float64
	keep     bool
}

func main() {
	s := settings{
		seconds:  envInt("DEMO_SECONDS", 60),
		history:  envInt("DEMO_HISTORY_MINUTES", 300),
		visitors: envFloat("DEMO_VISITORS", 10),
		speed:    envFloat("DEMO_SPEED", 4),
		keep:     os.Getenv("DEMO_KEEP") == "1",
	}
	flag.IntVar(&s.seconds, "seconds", s.seconds, "how long the services run live (DEMO_SECONDS)")
	flag.IntVar(&s.history, "history", s.history, "minutes of history sent first (DEMO_HISTORY_MINUTES)")
	flag.Float64Var(&s.visitors, "visitors", s.visitors, "web-signup's new visitors per second (DEMO_VISITORS)")
	flag.Float64Var(&s.speed, "speed", s.speed, "web-signup's time compression (DEMO_SPEED)")
	flag.BoolVar(&s.keep, "keep", s.keep, "keep the throwaway Postgres running at the end (DEMO_KEEP=1)")
	stopKept := flag.Bool("stop", false, "stop and remove the Postgres a -keep run kept, and exit")
	flag.Parse()
	if *stopKept {
		root, err := repoRoot()
		if err != nil {
			fail(err)
		}
		if _, err := os.Stat(filepath.Join(root, keptRecord)); errors.Is(err, fs.ErrNotExist) {
			fmt.Println("demo: no Postgres kept by make demo KEEP=1; nothing to stop")
			return
		}
		if err := stopKeptPostgres(root); err != nil {
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if s.seconds < 1 || s.history < 1 || s.visitors <= 0 || s.speed <= 0 {
		fail(errors.New("-seconds, -history, -visitors and -speed must be positive"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	d := &demo{settings: s}
	err := d.run(ctx)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "\ndemo: interrupted")
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
	}
	if cerr := d.cleanup(d.keep && !interrupted); cerr != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", cerr)
		if err == nil {
			err = cerr
		}
	}
	switch {
	case interrupted:
		os.Exit(130)
	case err != nil:
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "demo: %v\n", err)
	os.Exit(2)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func say(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

// indent prints each line of text with four spaces in front.
func indent(text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Println("    " + line)
	}
}

// demo is one run: what it started, so that cleanup stops exactly that.
type demo struct {
	settings
	root, dir string // the repository, and its .demo/

	pg        *pgtest.Server // the throwaway cluster, when the demo started one
	dsn       string
	pool      *pgxpool.Pool
	collector *harness.Collector
	services  []*service // in start order
}

// service is one example program the demo runs in the background.
type service struct {
	name   string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	log    string // its stderr
	done   chan struct{}
	err    error
}

func (d *demo) run(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	d.root, d.dir = root, filepath.Join(root, ".demo")
	bin := filepath.Join(d.root, "bin", "otelcol-track")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is missing: run make demo (it builds the collector first)", bin)
	}
	if err := stopKeptPostgres(d.root); err != nil {
		return err
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.dir, "data"), 0o755); err != nil {
		return err
	}

	say("building the example services and the chart tool")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(d.dir, "bin")+"/",
		"./examples/login-service", "./examples/payment-service", "./examples/backfill", "./examples/web-signup", "./cmd/trackchart")
	build.Dir = d.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}

	if err := d.startPostgres(ctx); err != nil {
		return err
	}
	if err := d.startCollector(ctx, bin); err != nil {
		return err
	}
	base, err := d.stored(ctx)
	if err != nil {
		return err
	}

	say("sending %d minutes of history (examples/backfill)", d.history)
	backfill, err := d.runOnce(ctx, "backfill", "-endpoint", d.collector.GRPC, "-minutes", strconv.Itoa(d.history))
	if err != nil {
		return err
	}
	indent(backfill.String())

	reports, err := d.runLive(ctx)
	if err != nil {
		return err
	}
	if err := d.checkExact(ctx, base, append(reports, backfill)); err != nil {
		return err
	}
	return d.show(ctx, reports)
}

// repoRoot is the directory of go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "examples", "collector.yaml")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the demo inside the track repository (make demo)")
		}
		dir = parent
	}
}

func (d *demo) startPostgres(ctx context.Context) error {
	if dsn := os.Getenv("TRACK_PG_DSN"); dsn != "" {
		say("using the Postgres of TRACK_PG_DSN")
		d.dsn = dsn
	} else {
		say("starting a throwaway Postgres (internal/pgtest)")
		srv, err := pgtest.NewServer()
		if errors.Is(err, pgtest.ErrNoPostgres) {
			return errors.New("no Postgres: set TRACK_PG_DSN or apt-get install postgresql-15")
		}
		if err != nil {
			return err
		}
		d.pg, d.dsn = srv, srv.DSN()
		fmt.Printf("    %s\n", d.dsn)
	}
	pool, err := pgxpool.New(ctx, d.dsn)
	if err != nil {
		return fmt.Errorf("connecting to Postgres: %w", err)
	}
	d.pool = pool
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("cannot connect to Postgres: %w", err)
	}
	return nil
}

func (d *demo) startCollector(ctx context.Context, bin string) error {
	logPath := filepath.Join(d.dir, "collector.log")
	c, err := harness.New(harness.Options{
		Name:          "otelcol-track",
		Binary:        bin,
		Configs:       []string{filepath.Join(d.root, "examples", "collector.yaml")},
		Args:          []string{healthGate},
		DSN:           d.dsn,
		DataDir:       filepath.Join(d.dir, "data"),
		LogPath:       logPath,
		DieWithParent: true,
		Logger:        harness.LoggerFunc(func(f string, a ...any) { fmt.Printf("    "+f+"\n", a...) }),
	})
	if err != nil {
		return err
	}
	d.collector = c
	say("starting the collector: OTLP gRPC %s, HTTP %s (log: .demo/collector.log)", c.GRPC, c.HTTP)
	if err := c.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("    healthy on %s (migrations applied, pipeline running)\n", c.Health)
	return nil
}

// command prepares the example program name from .demo/bin: it gets SIGTERM when ctx ends and
// SIGKILL serviceStop later, and SIGKILL if the demo itself dies.
func (d *demo) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(d.dir, "bin", name), args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = serviceStop
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(),
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+d.collector.GRPC,
		"OTEL_METRIC_EXPORT_INTERVAL=5000")
	return cmd
}

// runOnce runs an example program to its end and returns its report.
func (d *demo) runOnce(ctx context.Context, name string, args ...string) (simservice.Report, error) {
	cmd := d.command(ctx, name, args...)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		return simservice.Report{}, fmt.Errorf("%s failed: %w\n%s", name, err, errs.String())
	}
	r, err := simservice.ReadReport(out.Bytes())
	if err != nil {
		return simservice.Report{}, fmt.Errorf("%s: %w\n%s", name, err, errs.String())
	}
	return r, nil
}

// start starts an example program in the background.
func (d *demo) start(ctx context.Context, name string, args ...string) error {
	s := &service{name: name, cmd: d.command(ctx, name, args...), log: filepath.Join(d.dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	d.services = append(d.services, s)
	go func() {
		s.err = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	return nil
}

// runLive runs the login, payment and web-signup services for the demo's seconds, printing what
// Postgres holds every 5 s, and returns their reports.
func (d *demo) runLive(ctx context.Context) ([]simservice.Report, error) {
	dur := strconv.Itoa(d.seconds) + "s"
	say("running login-service and payment-service for %s (one cycle: steady, burst, dip to zero),", dur)
	fmt.Printf("    and web-signup: %g visitors/s through the sign-up form, waits compressed %gx\n", d.visitors, d.speed)
	for _, svc := range [][]string{
		{"login-service", "-duration", dur, "-cycle", dur},
		{"payment-service", "-duration", dur, "-cycle", dur},
		{"web-signup", "-duration", dur, "-visitors", fmt.Sprint(d.visitors), "-speed", fmt.Sprint(d.speed)},
	} {
		if err := d.start(ctx, svc[0], svc[1:]...); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for _, s := range d.services {
		for waiting := true; waiting; {
			select {
			case <-s.done:
				waiting = false
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-tick.C:
				st, err := d.stored(ctx)
				if err != nil {
					return nil, err
				}
				fmt.Printf("    %3.0fs: stored so far new-signup=%d fraudulent-card=%d card-checked=%d events=%d\n",
					time.Since(start).Seconds(), st.metrics["new-signup"], st.metrics["fraudulent-card"], st.metrics["card-checked"], st.events)
			}
		}
	}
	var reports []simservice.Report
	for _, s := range d.services {
		log, _ := os.ReadFile(s.log)
		if s.err != nil {
			return nil, fmt.Errorf("%s failed: %w\n%s", s.name, s.err, log)
		}
		r, err := simservice.ReadReport(s.stdout.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", s.name, err, log)
		}
		indent(r.String())
		reports = append(reports, r)
	}
	return reports, nil
}

// totals are what Postgres holds: the sum of every counter in track.minutely, and the number of
// stored events.
type totals struct {
	metrics map[string]int64
	events  int64
}

func (d *demo) stored(ctx context.Context) (totals, error) {
	t := totals{metrics: map[string]int64{}}
	rows, err := d.pool.Query(ctx, "SELECT metric, sum(value)::bigint FROM track.minutely GROUP BY metric")
	if err != nil {
		return t, fmt.Errorf("reading the stored totals: %w", err)
	}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return t, err
		}
		t.metrics[name] = v
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("reading the stored totals: %w", err)
	}
	if err := d.pool.QueryRow(ctx, "SELECT count(*) FROM track.events").Scan(&t.events); err != nil {
		return t, fmt.Errorf("counting the stored events: %w", err)
	}
	return t, nil
}

// checkExact waits until Postgres holds, on top of base (what a TRACK_PG_DSN database held
// before), exactly what the reports counted for every counter, and every event web-signup
// exported (the example config samples no event).
func (d *demo) checkExact(ctx context.Context, base totals, reports []simservice.Report) error {
	say("waiting until Postgres holds exactly what was counted")
	counted := map[string]int64{}
	var events uint64
	for _, r := range reports {
		for name, n := range r.Counted {
			counted[name] += n
		}
		events += r.EventsExported
	}
	deadline := time.Now().Add(exactWait)
	var st totals
	for {
		var err error
		if st, err = d.stored(ctx); err != nil {
			return err
		}
		exact := st.events-base.events == int64(events)
		for name, n := range counted {
			exact = exact && st.metrics[name]-base.metrics[name] == n
		}
		if exact {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	var wrong []string
	for _, name := range slices.Sorted(maps.Keys(counted)) {
		got := st.metrics[name] - base.metrics[name]
		verdict := "exact"
		if got != counted[name] {
			verdict = "MISSING OR EXTRA"
			wrong = append(wrong, name)
		}
		fmt.Printf("    %-16s counted %8d  stored %8d  %s\n", name, counted[name], got, verdict)
	}
	got, verdict := st.events-base.events, "exact"
	if got != int64(events) {
		verdict = "MISSING OR EXTRA"
		wrong = append(wrong, "events")
	}
	fmt.Printf("    %-16s sent    %8d  stored %8d  %s\n", "events", events, got, verdict)
	if len(wrong) > 0 {
		return fmt.Errorf("after %s Postgres does not hold what was counted for %s", exactWait, strings.Join(wrong, ", "))
	}
	return nil
}

// show prints what ops and analysts see: the charts, the analyst's query, the funnel and the errors.
func (d *demo) show(ctx context.Context, reports []simservice.Report) error {
	// The collector refreshes the anomaly baselines once an hour; the history arrived moments ago.
	say("refreshing the anomaly baselines (the collector does it every hour), so the charts mark the anomalies")
	var judged int
	if err := d.pool.QueryRow(ctx, "SELECT track.refresh_anomaly_baselines()").Scan(&judged); err != nil {
		fmt.Printf("    (not now: %v; the collector refreshes them on its schedule)\n", err)
	} else {
		fmt.Printf("    %d metrics have a baseline (a metric needs 3 hours of history)\n", judged)
	}
	since := fmt.Sprintf("%dm", d.history+2)
	step := chartStep(d.history)
	for _, c := range []struct{ metric, title, what string }{
		{"new-signup", "number of signups", "signups"},
		{"fraudulent-card", "number of fraudulent cards", "fraudulent cards"},
	} {
		say("chart: %s per %s, last %s", c.what, step, since)
		chart := exec.CommandContext(ctx, filepath.Join(d.dir, "bin", "trackchart"), "-dsn", d.dsn, "-metric", c.metric,
			"-since", since, "-step", step, "-height", "8", "-title", c.title)
		chart.Stdout, chart.Stderr = os.Stdout, os.Stderr
		if err := chart.Run(); err != nil {
			return fmt.Errorf("trackchart: %w", err)
		}
	}

	say("an analyst's query (psql \"$TRACK_PG_DSN\")")
	if err := d.query(ctx, os.Stdout, analystQuery); err != nil {
		return err
	}
	say("the sign-up funnel (web-signup's product events)")
	if err := d.query(ctx, os.Stdout, funnelQuery); err != nil {
		return err
	}
	for _, r := range reports {
		if len(r.Reached) > 0 {
			var steps []string
			for _, s := range r.Reached {
				steps = append(steps, fmt.Sprintf("%s=%d", s.Step, s.Visitors))
			}
			fmt.Printf("    %s counted: %s\n", r.Service, strings.Join(steps, " "))
		}
	}
	say("the errors behind the drop-outs")
	if err := d.query(ctx, os.Stdout, errorsQuery); err != nil {
		return err
	}
	if err := d.showAnomalies(ctx); err != nil {
		return err
	}
	if err := d.checkReadme(ctx); err != nil {
		return err
	}
	say("done; the collector log is in .demo/collector.log")
	return nil
}

// chartStep is the shortest of the usual steps that draws minutes in at most 50 bars.
func chartStep(minutes int) string {
	for _, m := range []int{1, 2, 5, 10, 15, 30, 60} {
		if minutes <= 50*m {
			return fmt.Sprintf("%dm", m)
		}
	}
	return "1h"
}

// incidentsTitle starts the title of the README query the demo shows after refreshing the baselines.
const incidentsTitle = "Incidents over the last day"

// showAnomalies prints the README's incidents query with its result.
func (d *demo) showAnomalies(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(d.root, "README.md"))
	if err != nil {
		return err
	}
	var incidents string
	for _, q := range readmeQueries(string(b)) {
		if strings.HasPrefix(q.title, incidentsTitle) {
			incidents = q.sql + ";"
		}
	}
	if incidents == "" {
		return fmt.Errorf("README.md has no query titled %q", incidentsTitle)
	}
	say("anomalies: the history as track.anomalies judges it (README, %s)", readmeSection)
	return d.query(ctx, os.Stdout, incidents)
}

// checkReadme runs the SQL of the README's analysts' section against the demo's data: each
// statement must run, and name only metrics and events that Postgres holds.
func (d *demo) checkReadme(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(d.root, "README.md"))
	if err != nil {
		return err
	}
	queries := readmeQueries(string(b))
	if len(queries) == 0 {
		return fmt.Errorf("README.md has no SQL under %q", readmeSection)
	}
	say("the README's %d analyst queries (%s), run against this data", len(queries), readmeSection)
	st, err := d.stored(ctx)
	if err != nil {
		return err
	}
	stored := map[string]bool{}
	rows, err := d.pool.Query(ctx, "SELECT DISTINCT name FROM track.events")
	if err != nil {
		return fmt.Errorf("reading the stored event names: %w", err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading the stored event names: %w", err)
	}
	for _, e := range events {
		stored["event "+e] = true
	}
	for m := range st.metrics {
		stored["metric "+m] = true
	}
	now := time.Now()
	var failed []string
	for i, q := range queries {
		metrics, events := names(q.sql)
		var unknown []string
		for _, m := range metrics {
			if !stored["metric "+m] {
				unknown = append(unknown, "metric "+m)
			}
		}
		for _, e := range events {
			if !stored["event "+e] {
				unknown = append(unknown, "event "+e)
			}
		}
		n, err := d.count(ctx, expandGrafana(q.sql, now.Add(-time.Hour), now))
		switch {
		case err != nil:
			fmt.Printf("    FAILED  %-9s %s\n            %v\n", "", q.title, err)
			failed = append(failed, fmt.Sprintf("query %d (%s)", i+1, q.title))
		case len(unknown) > 0:
			fmt.Printf("    FAILED  %-9s %s\n            names what the demo did not store: %s\n", "", q.title, strings.Join(unknown, ", "))
			failed = append(failed, fmt.Sprintf("query %d (%s)", i+1, q.title))
		default:
			fmt.Printf("    ok %6d %-4s  %s\n", n, map[bool]string{true: "row", false: "rows"}[n == 1], q.title)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("README.md's analyst queries do not run against the demo's data: %s", strings.Join(failed, "; "))
	}
	return nil
}

// count runs sql and returns how many rows it gave.
func (d *demo) count(ctx context.Context, sql string) (int, error) {
	rows, err := d.pool.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// query prints sql, then its result as a table.
func (d *demo) query(ctx context.Context, w io.Writer, sql string) error {
	fmt.Fprintf(w, "%s\n\n", sql)
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// The simple protocol returns every value as Postgres prints it, as psql shows it.
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return fmt.Errorf("the query failed: %w", err)
	}
	t, err := readTable(rows)
	if err != nil {
		return fmt.Errorf("the query failed: %w", err)
	}
	t.print(w)
	return nil
}

// cleanup stops what the demo started, newest first: the services (a Ctrl-C reaches them all at
// once, so each gets serviceStop to flush before it is killed), the collector (collectorStop to
// drain), then the throwaway cluster, or with keep, leaves the cluster running and says how to use
// and stop it.
func (d *demo) cleanup(keep bool) error {
	if len(d.services) == 0 && d.collector == nil && d.pg == nil {
		return nil
	}
	say("stopping what the demo started")
	var errs []error
	for i := len(d.services) - 1; i >= 0; i-- {
		s := d.services[i]
		select {
		case <-s.done:
			continue
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(serviceStop):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if d.pool != nil {
		d.pool.Close()
	}
	if d.collector != nil {
		errs = append(errs, d.collector.Stop(collectorStop))
	}
	switch {
	case d.pg != nil && keep:
		errs = append(errs, d.keepPostgres())
	case d.pg != nil:
		errs = append(errs, d.pg.Close())
	case keep && d.dsn != "":
		fmt.Println("    the demo's data stays in the database of TRACK_PG_DSN")
	}
	return errors.Join(errs...)
}
