package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Logger receives the harness's progress lines. A testing.TB is a Logger.
type Logger interface {
	Logf(format string, args ...any)
}

// LoggerFunc makes a function with Printf's signature a Logger.
type LoggerFunc func(format string, args ...any)

// Logf calls f.
func (f LoggerFunc) Logf(format string, args ...any) { f(format, args...) }

// ErrPortTaken is returned by Start when the collector could not bind one of its ports, after it
// has tried new ports on its first start.
var ErrPortTaken = errors.New("harness: a port was taken")

// StartTimeout bounds how long Start waits for the collector to become healthy.
const StartTimeout = 90 * time.Second

// RecommendedGOGC is the GOGC that examples/collector.yaml recommends for the collector.
const RecommendedGOGC = "200"

// Options describe one collector process. Configs and Binary are required.
type Options struct {
	// Name identifies the collector in log lines and errors.
	Name string
	// Binary is the otelcol-track executable.
	Binary string
	// Configs are the --config arguments, merged in order (examples/collector.yaml first).
	Configs []string
	// Args are extra command-line arguments (a feature gate).
	Args []string
	// DSN is TRACK_PG_DSN.
	DSN string
	// DataDir is TRACK_DATA_DIR, the persistent queue's directory. Required.
	DataDir string
	// WebOrigin, when not empty, is TRACK_WEB_ALLOWED_ORIGIN (the CORS origin of the browser endpoint).
	WebOrigin string
	// Gateways, when not empty, are the two collectors an agent on examples/gateway.yaml spreads
	// over (TRACK_GATEWAY_1 and TRACK_GATEWAY_2, read when the agent starts).
	Gateways []*Collector
	// Env is appended to the environment last, so it overrides everything else.
	Env []string
	// LogPath is the file the collector's stdout and stderr are appended to. Required.
	LogPath string
	// Degraded makes Start return once the collector accepts OTLP (its gRPC port answers) instead of
	// once health_check reports it healthy: for a collector started while Postgres is down.
	Degraded bool
	// DieWithParent makes the collector get SIGKILL when the process that started it dies first
	// (Linux's PR_SET_PDEATHSIG), so that no collector outlives a crashed test or driver.
	DieWithParent bool
	// Logger receives progress lines (a retry on new ports); nil discards them.
	Logger Logger
}

// Collector is one otelcol-track process. Its addresses are chosen by New and may change during
// the first Start (when a port was taken meanwhile); read them after Start returns. Start, Stop,
// Kill and PID are safe for concurrent use.
type Collector struct {
	// Opts are the options New was given; change them only while the collector is stopped.
	Opts Options
	// GRPC, HTTP, Web and Health are the host:port of the OTLP/gRPC, OTLP/HTTP, browser (otlp/web)
	// and health_check endpoints.
	GRPC, HTTP, Web, Health string
	// Pprof and Metrics are the loopback ports of pprof and of the collector's own Prometheus metrics.
	Pprof, Metrics int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// New prepares (but does not start) a collector on free loopback ports.
func New(o Options) (*Collector, error) {
	if o.Binary == "" || len(o.Configs) == 0 || o.DataDir == "" || o.LogPath == "" {
		return nil, errors.New("harness: Binary, Configs, DataDir and LogPath are required")
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("harness: the collector binary: %w (run make collector)", err)
	}
	if o.Name == "" {
		o.Name = "collector"
	}
	c := &Collector{Opts: o}
	if err := c.pickPorts(); err != nil {
		return nil, err
	}
	return c, nil
}

// FreePort returns a loopback TCP port that was free a moment ago. It picks from 20000-32767, below
// the kernel's ephemeral range, so that the outgoing connections of other processes (which get
// ephemeral ports) cannot take it before the collector binds it.
func FreePort() (int, error) {
	for range 1000 {
		p := 20000 + mathrand.IntN(12768)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, errors.New("harness: no free loopback port in 20000-32767")
}

func (c *Collector) pickPorts() error {
	var ports [6]int
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	c.GRPC, c.HTTP, c.Web, c.Health = addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3])
	c.Pprof, c.Metrics = ports[4], ports[5]
	return nil
}

// Environ is the collector's environment: the process's own, the variables of
// examples/collector.yaml, the recommended Go runtime settings, then Opts.Env.
func (c *Collector) Environ() []string {
	o := c.Opts
	env := append(os.Environ(),
		"TRACK_PG_DSN="+o.DSN,
		"TRACK_OTLP_GRPC_ENDPOINT="+c.GRPC,
		"TRACK_OTLP_HTTP_ENDPOINT="+c.HTTP,
		"TRACK_WEB_ENDPOINT="+c.Web,
		"TRACK_HEALTH_ENDPOINT="+c.Health,
		"TRACK_DATA_DIR="+o.DataDir,
		fmt.Sprintf("TRACK_PPROF_ENDPOINT=127.0.0.1:%d", c.Pprof),
		fmt.Sprintf("TRACK_TELEMETRY_PORT=%d", c.Metrics),
	)
	if o.WebOrigin != "" {
		env = append(env, "TRACK_WEB_ALLOWED_ORIGIN="+o.WebOrigin)
	}
	if len(o.Gateways) == 2 {
		env = append(env, "TRACK_GATEWAY_1="+o.Gateways[0].GRPC, "TRACK_GATEWAY_2="+o.Gateways[1].GRPC)
	}
	env = append(env, GoRuntimeEnv()...)
	return append(env, o.Env...)
}

// GoRuntimeEnv is the Go runtime environment examples/collector.yaml recommends: GOGC=200, and
// GOMEMLIMIT at half the machine's memory. Values already in the process's environment win.
func GoRuntimeEnv() []string {
	var env []string
	if _, ok := os.LookupEnv("GOGC"); !ok {
		env = append(env, "GOGC="+RecommendedGOGC)
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

// Start starts the process and waits until health_check reports it ready (or, with Degraded, until
// its gRPC port answers), at most StartTimeout or until ctx ends. On the first start, if a port was
// taken in the meantime, it tries again on new ports (up to five times). A collector that exits
// during the wait is an error naming the tail of its log.
func (c *Collector) Start(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := c.tryStart(ctx)
		if err == nil {
			return nil
		}
		if c.starts == attempt && attempt < 5 && errors.Is(err, ErrPortTaken) {
			c.logf("collector %s: %v; trying other ports", c.Opts.Name, err)
			if perr := c.pickPorts(); perr != nil {
				return perr
			}
			continue
		}
		return fmt.Errorf("collector %s: %w", c.Opts.Name, err)
	}
}

func (c *Collector) logf(format string, args ...any) {
	if c.Opts.Logger != nil {
		c.Opts.Logger.Logf(format, args...)
	}
}

func (c *Collector) tryStart(ctx context.Context) error {
	c.mu.Lock()
	if c.cmd != nil {
		c.mu.Unlock()
		return errors.New("already running")
	}
	var args []string
	for _, p := range c.Opts.Configs {
		args = append(args, "--config", p)
	}
	args = append(args, c.Opts.Args...)
	logf, err := os.OpenFile(c.Opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.starts++
	fmt.Fprintf(logf, "==== start %d of %s\n", c.starts, c.Opts.Name)
	cmd := exec.Command(c.Opts.Binary, args...)
	if c.Opts.DieWithParent {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	cmd.Env = c.Environ()
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

	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			c.mu.Lock()
			c.cmd = nil
			c.mu.Unlock()
			if b, _ := os.ReadFile(c.Opts.LogPath); bytes.Contains(b, []byte("address already in use")) {
				return ErrPortTaken
			}
			return fmt.Errorf("exited during start:\n%s", c.LogTail(4000))
		default:
		}
		if c.ready(ctx, client) {
			return nil
		}
		select {
		case <-ctx.Done():
			c.Kill()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not healthy after %s", StartTimeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ready reports whether the collector answers: health_check says 200, or with Degraded, its gRPC
// port accepts a connection.
func (c *Collector) ready(ctx context.Context, client *http.Client) bool {
	if c.Opts.Degraded {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		conn, err := d.DialContext(dctx, "tcp", c.GRPC)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Health+"/", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// PID is the process id of the running collector, or 0.
func (c *Collector) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Kill ends the process with SIGKILL, as a crash or the OOM killer would, and waits for it. It is a
// no-op on a stopped collector.
func (c *Collector) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
}

// Stop ends the process gracefully (SIGTERM: the collector drains its pipeline) and waits for it;
// after timeout it sends SIGKILL and returns an error saying so. It is a no-op on a stopped
// collector.
func (c *Collector) Stop(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-c.exited:
	case <-time.After(timeout):
		err = fmt.Errorf("collector %s ignored SIGTERM for %s; killed it", c.Opts.Name, timeout)
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.exited
	}
	c.cmd = nil
	return err
}

// Exited returns a channel closed when the running process exits (nil when it is not running).
func (c *Collector) Exited() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return nil
	}
	return c.exited
}

// LogTail returns the last n bytes of the collector's log (all of it when shorter).
func (c *Collector) LogTail(n int) string {
	b, err := os.ReadFile(c.Opts.LogPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
