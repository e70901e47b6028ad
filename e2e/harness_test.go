package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/trackhq/track/internal/harness"
	"github.com/trackhq/track/internal/pgtest"
)

var (
	repoRoot     string // the module root
	collectorBin string // bin/otelcol-track, or TRACK_COLLECTOR_BIN
	senderBin    string // built from ./internal/sender in TestMain
	chartBin     string // built from ../cmd/trackchart in TestMain
)

// setup wraps the test run: it finds the collector binary and builds the sender before the tests,
// and removes the sender after them.
type setup struct{ m *testing.M }

func (s setup) Run() int {
	dir, err := os.MkdirTemp("", "track-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := prepare(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return s.m.Run()
}

func prepare(dir string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repoRoot = filepath.Dir(wd)
	collectorBin = os.Getenv("TRACK_COLLECTOR_BIN")
	if collectorBin == "" {
		collectorBin = filepath.Join(repoRoot, "bin", "otelcol-track")
	}
	if _, err := os.Stat(collectorBin); err != nil {
		return fmt.Errorf("the end-to-end tests need the collector binary %s: run `make collector` "+
			"(make test does it) or set TRACK_COLLECTOR_BIN: %w", collectorBin, err)
	}
	senderBin, chartBin = filepath.Join(dir, "sender"), filepath.Join(dir, "trackchart")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./internal/sender", "../cmd/trackchart").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building the sender and trackchart: %w\n%s", err, out)
	}
	return nil
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.M(setup{m}))
}

// dieWithTest makes a child process get SIGKILL if the test process dies first (a test timeout's
// panic, a kill), so that no collector or sender outlives the tests even when t.Cleanup cannot run.
func dieWithTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// collector is one otelcol-track process started by a test (internal/harness), with its own
// ports and data directory, on examples/collector.yaml plus the test's overrides.
type collector struct {
	*harness.Collector
	t    testing.TB
	name string
}

// collectorOptions are what a scenario changes in the example config.
type collectorOptions struct {
	dsn      string // TRACK_PG_DSN
	schema   string // exporters::pgrollup::schema
	override string // extra YAML merged over examples/collector.yaml
	dataDir  string // TRACK_DATA_DIR; a fresh temp dir when empty
	// webOrigin is TRACK_WEB_ALLOWED_ORIGIN, the origin allowed to send from a browser (CORS).
	webOrigin string
	// agentOf, when not empty, makes this collector an agent on examples/gateway.yaml whose
	// load_balancing exporter spreads over these gateways (dsn and schema are then unused).
	agentOf []*collector
	// args are extra command-line arguments (a feature gate).
	args []string
	// degraded makes start return once the collector accepts OTLP (its gRPC port answers) instead
	// of once health_check reports it healthy: for a collector started while Postgres is down.
	degraded bool
}

// newCollector prepares (but does not start) a collector; it is stopped when the test ends.
func newCollector(t testing.TB, name string, o collectorOptions) *collector {
	t.Helper()
	dir := t.TempDir()
	if o.dataDir == "" {
		o.dataDir = filepath.Join(dir, "data")
	}
	override := fmt.Sprintf("exporters:\n  pgrollup:\n    schema: %s\n", o.schema)
	base := filepath.Join(repoRoot, "examples", "collector.yaml")
	var gateways []*harness.Collector
	if len(o.agentOf) > 0 {
		require.Len(t, o.agentOf, 2, "examples/gateway.yaml lists two gateways")
		base, override = filepath.Join(repoRoot, "examples", "gateway.yaml"), "{}\n"
		gateways = []*harness.Collector{o.agentOf[0].Collector, o.agentOf[1].Collector}
	}
	overridePath := filepath.Join(dir, "override.yaml")
	require.NoError(t, os.WriteFile(overridePath, []byte(override), 0o600))
	configs := []string{base, overridePath}
	if o.override != "" {
		p := filepath.Join(dir, "scenario.yaml")
		require.NoError(t, os.WriteFile(p, []byte(o.override), 0o600))
		configs = append(configs, p)
	}
	if _, bench := t.(*testing.B); bench && os.Getenv("TRACK_BENCH_CONFIG") != "" {
		// Benchmarks only: a YAML file merged over everything else, for trying settings without
		// editing examples/collector.yaml (e.g. a queue's num_consumers).
		configs = append(configs, os.Getenv("TRACK_BENCH_CONFIG"))
	}
	h, err := harness.New(harness.Options{
		Name:          name,
		Binary:        collectorBin,
		Configs:       configs,
		Args:          o.args,
		DSN:           o.dsn,
		DataDir:       o.dataDir,
		WebOrigin:     o.webOrigin,
		Gateways:      gateways,
		Env:           []string{"TRACK_SAMPLER_HASH_KEY=e2e-test-hash-key-0123456789"},
		LogPath:       filepath.Join(dir, "collector.log"),
		Degraded:      o.degraded,
		DieWithParent: true,
		Logger:        t,
	})
	require.NoError(t, err)
	c := &collector{Collector: h, t: t, name: name}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			c.dumpLog()
		}
	})
	return c
}

// start starts the collector and waits until it is healthy; it fails the test if it cannot.
func (c *collector) start() {
	c.t.Helper()
	if err := c.Start(context.Background()); err != nil {
		c.dumpLog()
		c.t.Fatal(err)
	}
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would.
func (c *collector) kill() { c.Kill() }

// stop ends the process gracefully (SIGTERM), and with SIGKILL (and a test error) after 30 s.
func (c *collector) stop() {
	if err := c.Stop(30 * time.Second); err != nil {
		c.t.Error(err)
	}
}

// pid is the process id of the running collector, or 0.
func (c *collector) pid() int { return c.PID() }

func (c *collector) dumpLog() {
	c.t.Logf("---- tail of the log of collector %s ----\n%s", c.name, c.LogTail(8000))
}

// senderSpec is one sender process.
type senderSpec struct {
	mode     string // track (default), sdk or events
	metric   string
	n        int64
	duration time.Duration
	interval time.Duration // export interval; 1s when zero
	attrs    []string      // key=value
	endpoint string        // host:port of the collector
	protocol string        // grpc (default) or http/protobuf
	env      []string      // extra environment
	flush    time.Duration // -flush-timeout; 2m when zero
	// Events mode only: event names taken in turn, distinct users, the seed of the user ids, and
	// whether every event carries PII.
	events []string
	users  int
	seed   uint64
	pii    bool
	// Sdk mode only: -baseline and -start-age (see the sender's doc).
	baseline int64
	startAge time.Duration
}

// senderReport mirrors the JSON line the sender prints.
type senderReport struct {
	Mode     string `json:"mode"`
	Sent     int64  `json:"sent"`
	Exported uint64 `json:"exported_points"`
	Failures uint64 `json:"export_failures"`
	Dropped  uint64 `json:"dropped_points"`
	Backlog  int64  `json:"backlog_points"`
	Error    string `json:"error,omitempty"`
	Baseline int64  `json:"baseline"`
	// Events mode only: events emitted per name, and the tracker's event statistics.
	Events         map[string]int64 `json:"events"`
	EventsExported uint64           `json:"events_exported"`
	EventsDropped  uint64           `json:"events_dropped"`
	EventsBacklog  int64            `json:"events_backlog"`
}

// runSenders starts every sender at once, waits for all of them (at most 4 minutes), and returns
// their reports in order. during, if not nil, runs while they send.
func runSenders(t *testing.T, specs []senderSpec, during func()) []senderReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	reports := make([]senderReport, len(specs))
	errs := make([]error, len(specs))
	outs := make([]*bytes.Buffer, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		if s.mode == "" {
			s.mode = "track"
		}
		if s.interval == 0 {
			s.interval = time.Second
		}
		if s.flush == 0 {
			s.flush = 2 * time.Minute
		}
		args := []string{"-mode", s.mode, "-metric", s.metric, "-n", fmt.Sprint(s.n),
			"-duration", s.duration.String(), "-interval", s.interval.String(), "-flush-timeout", s.flush.String()}
		for _, a := range s.attrs {
			args = append(args, "-attr", a)
		}
		if s.baseline > 0 || s.startAge > 0 {
			args = append(args, "-baseline", fmt.Sprint(s.baseline), "-start-age", s.startAge.String())
		}
		if s.mode == "events" {
			args = append(args, "-events", strings.Join(s.events, ","), "-users", fmt.Sprint(max(s.users, 1)),
				"-seed", fmt.Sprint(s.seed), fmt.Sprintf("-pii=%t", s.pii))
		}
		cmd := exec.CommandContext(ctx, senderBin, args...)
		cmd.SysProcAttr = dieWithTest()
		endpoint := "http://" + s.endpoint
		cmd.Env = append(os.Environ(),
			"OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
			"OTEL_SERVICE_NAME=e2e-sender",
			fmt.Sprintf("OTEL_RESOURCE_ATTRIBUTES=service.instance.id=%s-%d", t.Name(), i),
		)
		if s.protocol != "" {
			cmd.Env = append(cmd.Env, "OTEL_EXPORTER_OTLP_PROTOCOL="+s.protocol)
		}
		cmd.Env = append(cmd.Env, s.env...)
		outs[i] = &bytes.Buffer{}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = outs[i], &stderr
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Run()
			if jerr := json.Unmarshal(outs[i].Bytes(), &reports[i]); jerr != nil {
				errs[i] = fmt.Errorf("sender %d: %v; output %q, stderr %q", i, errors.Join(err, jerr), outs[i], stderr.String())
			}
		}()
	}
	if during != nil {
		during()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	return reports
}

// db is a connection to the schema a scenario writes into.
type db struct {
	dsn    string
	schema string
}

// sum returns the total in <schema>.minutely of metric, restricted to rows whose attributes
// contain filter (JSON) when filter is not empty.
func (d db) sum(ctx context.Context, metric, filter string) (int64, error) {
	conn, err := pgx.Connect(ctx, d.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	if filter == "" {
		filter = "{}"
	}
	var v float64
	err = conn.QueryRow(ctx, "SELECT coalesce(sum(value), 0) FROM "+d.schema+".minutely WHERE metric = $1 AND attributes @> $2::jsonb",
		metric, filter).Scan(&v)
	return int64(v), err
}

// sumPrefix returns the total in <schema>.minutely of the metrics whose names start with prefix.
func (d db) sumPrefix(ctx context.Context, prefix string) (int64, error) {
	conn, err := pgx.Connect(ctx, d.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var v float64
	err = conn.QueryRow(ctx, "SELECT coalesce(sum(value), 0) FROM "+d.schema+".minutely WHERE starts_with(metric, $1)", prefix).Scan(&v)
	return int64(v), err
}

// result is one scenario's figures.
type result struct {
	sent, stored int64
	converge     time.Duration // from the last sender's exit to the exact sum
}

// waitForSum polls until the stored sum of metric equals want (at most timeout), then checks
// that it stays there for settle (a late duplicate would show), and logs the scenario's figures.
func waitForSum(t *testing.T, d db, metric, filter string, want int64, timeout, settle time.Duration) result {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+settle+30*time.Second)
	defer cancel()
	var got int64
	var err error
	for {
		got, err = d.sum(ctx, metric, filter)
		if err == nil && got == want {
			break
		}
		if got > want {
			t.Fatalf("stored %d > sent %d: counts were doubled", got, want)
		}
		if time.Since(start) > timeout {
			t.Fatalf("after %s the stored sum of %s is %d, want exactly %d (last error: %v)", timeout, metric, got, want, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := result{sent: want, stored: got, converge: time.Since(start)}
	time.Sleep(settle)
	got, err = d.sum(ctx, metric, filter)
	require.NoError(t, err)
	require.Equal(t, want, got, "the sum moved after it had converged")
	t.Logf("E2E %s: sent=%d stored=%d converged=%s after the senders ended", t.Name(), r.sent, got, r.converge.Round(10*time.Millisecond))
	return r
}

// total adds up what the senders say they counted.
func total(rs []senderReport) int64 {
	var n int64
	for _, r := range rs {
		n += r.Sent
	}
	return n
}

// killAndRestart returns a function for runSenders' during: after wait, it SIGKILLs c, and starts
// it again (on the same data directory) after down.
func killAndRestart(t *testing.T, c *collector, wait, down time.Duration) func() {
	return func() {
		time.Sleep(wait)
		c.kill()
		t.Logf("collector %s SIGKILLed", c.name)
		time.Sleep(down)
		c.start()
		t.Logf("collector %s restarted", c.name)
	}
}

// startTwo starts two collectors on the same schema of d.
func startTwo(t *testing.T, d db) (*collector, *collector) {
	c1 := newCollector(t, "c1", collectorOptions{dsn: d.dsn, schema: d.schema})
	c2 := newCollector(t, "c2", collectorOptions{dsn: d.dsn, schema: d.schema})
	c1.start()
	c2.start()
	return c1, c2
}

// requireNoSenderError checks that every sender ended without an error.
func requireNoSenderError(t *testing.T, rs []senderReport) {
	t.Helper()
	for i, r := range rs {
		require.Empty(t, r.Error, "sender %d", i)
	}
}

// requireDelivered checks that no track sender dropped or still holds points.
func requireDelivered(t *testing.T, rs []senderReport) {
	t.Helper()
	for i, r := range rs {
		require.Empty(t, r.Error, "sender %d", i)
		require.Zero(t, r.Dropped, "sender %d dropped points", i)
		require.Zero(t, r.Backlog, "sender %d still holds points", i)
	}
}
