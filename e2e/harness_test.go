package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
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

// freePort returns a loopback TCP port that was free a moment ago. It picks from 20000-32767,
// below the kernel's ephemeral range, so that the outgoing connections of the many processes on
// this machine (which get ephemeral ports) cannot take it before the collector binds it.
func freePort(t testing.TB) int {
	t.Helper()
	for range 1000 {
		p := 20000 + mathrand.IntN(12768)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free loopback port in 20000-32767")
	return 0
}

// dieWithTest makes a child process get SIGKILL if the test process dies first (a test timeout's
// panic, a kill), so that no collector or sender outlives the tests even when t.Cleanup cannot run.
func dieWithTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// collector is one otelcol-track process started by a test, with its own ports and data
// directory, on examples/collector.yaml plus the test's overrides.
type collector struct {
	t       testing.TB
	name    string
	configs []string // --config arguments
	grpc    string   // host:port
	http    string   // host:port
	web     string   // host:port of the browser endpoint (otlp/web)
	health  string   // host:port
	logPath string
	opts    collectorOptions
	pprof   int
	metrics int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
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
	if len(o.agentOf) > 0 {
		require.Len(t, o.agentOf, 2, "examples/gateway.yaml lists two gateways")
		base, override = filepath.Join(repoRoot, "examples", "gateway.yaml"), "{}\n"
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
	c := &collector{
		t:       t,
		name:    name,
		configs: configs,
		opts:    o,
		logPath: filepath.Join(dir, "collector.log"),
	}
	c.pickPorts()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			c.dumpLog()
		}
	})
	return c
}

// pickPorts chooses the collector's loopback ports.
func (c *collector) pickPorts() {
	c.grpc = fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	c.http = fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	c.web = fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	c.health = fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	c.pprof, c.metrics = freePort(c.t), freePort(c.t)
}

// environ is the collector's environment: the variables of examples/collector.yaml.
func (c *collector) environ() []string {
	env := append(os.Environ(),
		"TRACK_PG_DSN="+c.opts.dsn,
		"TRACK_OTLP_GRPC_ENDPOINT="+c.grpc,
		"TRACK_OTLP_HTTP_ENDPOINT="+c.http,
		"TRACK_WEB_ENDPOINT="+c.web,
		"TRACK_HEALTH_ENDPOINT="+c.health,
		"TRACK_DATA_DIR="+c.opts.dataDir,
		fmt.Sprintf("TRACK_PPROF_ENDPOINT=127.0.0.1:%d", c.pprof),
		fmt.Sprintf("TRACK_TELEMETRY_PORT=%d", c.metrics),
		"TRACK_SAMPLER_HASH_KEY=e2e-test-hash-key-0123456789",
	)
	if c.opts.webOrigin != "" {
		env = append(env, "TRACK_WEB_ALLOWED_ORIGIN="+c.opts.webOrigin)
	}
	if g := c.opts.agentOf; len(g) == 2 {
		env = append(env, "TRACK_GATEWAY_1="+g[0].grpc, "TRACK_GATEWAY_2="+g[1].grpc)
	}
	return append(env, goRuntimeEnv()...)
}

// recommendedGOGC is the GOGC that examples/collector.yaml recommends for the collector.
const recommendedGOGC = "200"

// goRuntimeEnv is the Go runtime environment examples/collector.yaml recommends (and
// scripts/demo.sh sets): GOGC=200, and GOMEMLIMIT at half the machine's memory. Values already in
// the test's environment win.
func goRuntimeEnv() []string {
	var env []string
	if _, ok := os.LookupEnv("GOGC"); !ok {
		env = append(env, "GOGC="+recommendedGOGC)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		if b, err := os.ReadFile("/proc/meminfo"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
					var kb int64
					if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil && kb > 0 {
						env = append(env, fmt.Sprintf("GOMEMLIMIT=%dMiB", kb/1024/2))
					}
				}
			}
		}
	}
	return env
}

// start starts the process and waits until health_check reports it ready. On its first start,
// if a port it was given was taken in the meantime, it tries again on new ports.
func (c *collector) start() {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		err := c.tryStart()
		if err == nil {
			return
		}
		if c.starts == attempt && attempt < 5 && errors.Is(err, errPortTaken) {
			c.t.Logf("collector %s: %v; trying other ports", c.name, err)
			c.pickPorts()
			continue
		}
		c.dumpLog()
		c.t.Fatalf("collector %s: %v", c.name, err)
	}
}

var errPortTaken = errors.New("a port was taken")

func (c *collector) tryStart() error {
	c.mu.Lock()
	args := []string{}
	for _, p := range c.configs {
		args = append(args, "--config", p)
	}
	args = append(args, c.opts.args...)
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.starts++
	fmt.Fprintf(logf, "==== start %d of %s\n", c.starts, c.name)
	cmd := exec.Command(collectorBin, args...)
	cmd.SysProcAttr = dieWithTest()
	cmd.Env = c.environ()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()

	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			c.mu.Lock()
			c.cmd = nil
			c.mu.Unlock()
			if b, _ := os.ReadFile(c.logPath); bytes.Contains(b, []byte("address already in use")) {
				return errPortTaken
			}
			return errors.New("exited during start")
		default:
		}
		if c.opts.degraded {
			if conn, err := net.DialTimeout("tcp", c.grpc, time.Second); err == nil {
				conn.Close()
				return nil
			}
		} else if resp, err := client.Get("http://" + c.health + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("not healthy after 90s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pid is the process id of the running collector, or 0.
func (c *collector) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would.
func (c *collector) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
}

// stop ends the process gracefully (SIGTERM), and with SIGKILL after 30 s.
func (c *collector) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.t.Errorf("collector %s ignored SIGTERM for 30s; killing it", c.name)
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.exited
	}
	c.cmd = nil
}

func (c *collector) dumpLog() {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return
	}
	const keep = 8000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	c.t.Logf("---- tail of the log of collector %s ----\n%s", c.name, b)
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
