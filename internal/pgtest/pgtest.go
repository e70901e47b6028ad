package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDSN is the environment variable that points the tests at an existing server instead of a
// throwaway cluster.
const EnvDSN = "TRACK_TEST_DSN"

// EnvDurable is the environment variable that, when set to 1, keeps fsync and synchronous_commit on
// in throwaway clusters. By default they are off, since the cluster is discarded anyway.
const EnvDurable = "TRACK_TEST_PG_DURABLE"

// InstallHint is the advice given when no PostgreSQL binaries can be found.
const InstallHint = "install the postgresql package (apt-get install postgresql-15) or set " + EnvDSN

// ErrNoPostgres is returned when TRACK_TEST_DSN is unset and no PostgreSQL binaries are installed.
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL binaries in /usr/lib/postgresql/*/bin: " + InstallHint)

// ErrExternal is returned by Stop, Start and Restart on a server given by TRACK_TEST_DSN, which
// pgtest does not manage.
var ErrExternal = errors.New("pgtest: the server comes from " + EnvDSN + " and cannot be stopped or started by pgtest")

// Server is a PostgreSQL server used by tests: either an external one (TRACK_TEST_DSN) or a
// throwaway cluster that pgtest started. Its methods are safe for concurrent use.
type Server struct {
	dsn string

	mu      sync.Mutex
	managed bool
	binDir  string
	dir     string // temporary directory holding data/, sock/ and log
	port    int
	running bool
	cred    *syscall.Credential
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the server shared by all tests of the test binary, starting a throwaway cluster on
// first use unless TRACK_TEST_DSN is set. It fails tb when no server can be had. It is safe for
// concurrent use. The cluster is stopped by M's Run after the tests, or by the watchdog once the
// test binary exits.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	s, err := SharedServer()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return s
}

// SharedServer is Shared for callers without a testing.TB (for example TestMain, a benchmark
// harness or the demo driver). It is safe for concurrent use.
func SharedServer() (*Server, error) {
	sharedOnce.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			shared = &Server{dsn: dsn}
			return
		}
		shared, sharedErr = NewServer()
	})
	return shared, sharedErr
}

// Runner is what goleak.VerifyTestMain and similar wrappers accept: a test run returning its status.
type Runner interface {
	Run() int
}

// M wraps m so that its Run also stops and removes the shared cluster after the tests. Use it to
// combine pgtest with goleak:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }
func M(m Runner) Runner { return runner{m} }

type runner struct{ m Runner }

func (r runner) Run() int {
	code := r.m.Run()
	if err := closeShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func closeShared() error {
	sharedOnce.Do(func() { sharedErr = errors.New("pgtest: the shared server was already closed") })
	s := shared
	if s == nil {
		return nil
	}
	return s.Close()
}

// NewServer initialises and starts a private throwaway cluster, ignoring TRACK_TEST_DSN. Tests that
// stop or restart Postgres use it so that they do not disturb tests sharing the Shared server. The
// caller must call Close. It returns ErrNoPostgres when no binaries are installed.
func NewServer() (*Server, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: creating the cluster directory: %w", err)
	}
	s := &Server{managed: true, binDir: binDir, dir: dir}
	if err := s.init(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		s.port = port
		if lastErr = s.Start(); lastErr == nil {
			s.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			if err := s.watch(); err != nil {
				_ = s.Close()
				return nil, err
			}
			return s, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

// findBinDir returns the bin directory of the newest PostgreSQL under /usr/lib/postgresql.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", ErrNoPostgres
	}
	sort.Slice(ok, func(i, j int) bool { return versionOf(ok[i]) > versionOf(ok[j]) })
	return ok[0], nil
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// init runs initdb, as the postgres user when the process is root.
func (s *Server) init() error {
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	s.cred = cred
	if cred != nil {
		for _, d := range []string{s.dir, filepath.Join(s.dir, "sock")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: handing the cluster directory to postgres: %w", err)
			}
		}
	} else if err := os.MkdirAll(filepath.Join(s.dir, "sock"), 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	out, err := s.run("initdb", "-D", s.dataDir(), "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

// postgresCredential is the postgres user's when the process is root (Postgres refuses to run as
// root), else nil: the binaries run as the process's own user.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a postgres user for initdb: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// watchdogScript stops the cluster and removes its directory once the test process ($1) is gone,
// however it ended (a panic, a timeout, os.Exit from a TestMain without M, a SIGKILL).
// It exits on its own when Close has already removed the directory ($3), and leaves the cluster
// running when Keep has marked it ($3/keep).
const watchdogScript = `while [ -d "/proc/$1" ] && [ -d "$3" ] && [ ! -e "$3/keep" ]; do sleep 1; done
if [ -d "$3" ] && [ ! -e "$3/keep" ]; then "$2" -D "$3/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$3"; fi`

// keepFile marks a cluster that Keep lets outlive the process.
const keepFile = "keep"

// Keep lets a managed cluster outlive the process that started it: the watchdog exits and leaves
// it running. Close still stops and removes it; once the process is gone, StopKept(s.Dir()) does.
// The demo driver uses it for make demo KEEP=1. It returns ErrExternal for a TRACK_TEST_DSN server
// and is safe for concurrent use.
func (s *Server) Keep() error {
	if !s.managed {
		return ErrExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		return errors.New("pgtest: the cluster was closed")
	}
	if err := os.WriteFile(filepath.Join(s.dir, keepFile), nil, 0o644); err != nil {
		return fmt.Errorf("pgtest: marking the cluster kept: %w", err)
	}
	return nil
}

// StopKept stops the cluster in dir (fast shutdown) that Keep let outlive its process, and removes
// dir. It refuses a directory that Keep did not mark, so it never removes anything else. A cluster
// that is no longer running (the machine restarted) is only removed.
func StopKept(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, keepFile)); err != nil {
		return fmt.Errorf("pgtest: %s is not a kept cluster: %w", dir, err)
	}
	binDir, err := findBinDir()
	if err != nil {
		return err
	}
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	s := &Server{managed: true, binDir: binDir, dir: dir, cred: cred}
	if _, err := os.Stat(filepath.Join(s.dataDir(), "postmaster.pid")); err == nil {
		if out, err := s.run("pg_ctl", "-D", s.dataDir(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			return fmt.Errorf("pgtest: stopping the kept cluster: %w\n%s", err, out)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("pgtest: removing the kept cluster: %w", err)
	}
	return nil
}

// watch starts the watchdog process that cleans the cluster up after the process that started it exits.
func (s *Server) watch() error {
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgtest-watchdog",
		strconv.Itoa(os.Getpid()), filepath.Join(s.binDir, "pg_ctl"), s.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: starting the cleanup watchdog: %w", err)
	}
	return cmd.Process.Release()
}

// run runs a PostgreSQL binary, as the postgres user when needed, and returns its combined output.
func (s *Server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

// DSN returns the connection string of the server's default database. It is safe for concurrent use.
func (s *Server) DSN() string { return s.dsn }

// Dir returns the temporary directory of a managed cluster (data/, sock/ and the server log), or ""
// for a TRACK_TEST_DSN server.
func (s *Server) Dir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir
}

// Managed reports whether pgtest started this server (and so can stop and start it).
func (s *Server) Managed() bool { return s.managed }

// Start starts a stopped managed server on its port and waits until it accepts connections. It is a
// no-op on a running server and returns ErrExternal for a TRACK_TEST_DSN server.
func (s *Server) Start() error {
	if !s.managed {
		return ErrExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 "+
		"-c shared_buffers=64MB -c max_wal_size=1GB", s.port, filepath.Join(s.dir, "sock"))
	if os.Getenv(EnvDurable) != "1" {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	out, err := s.run("pg_ctl", "-D", s.dataDir(), "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pgtest: starting postgres on port %d: %w\n%s\n%s", s.port, err, out, log)
	}
	s.running = true
	return nil
}

// Stop stops a managed server (fast shutdown: clients are disconnected, nothing committed is lost).
// It is a no-op on a stopped server and returns ErrExternal for a TRACK_TEST_DSN server.
func (s *Server) Stop() error {
	return s.stop("fast")
}

// Kill stops a managed server in immediate mode, as a crash would: the server recovers from its WAL
// on the next Start. It returns ErrExternal for a TRACK_TEST_DSN server.
func (s *Server) Kill() error {
	return s.stop("immediate")
}

func (s *Server) stop(mode string) error {
	if !s.managed {
		return ErrExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	out, err := s.run("pg_ctl", "-D", s.dataDir(), "-m", mode, "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pgtest: stopping postgres: %w\n%s", err, out)
	}
	s.running = false
	return nil
}

// Restart stops and starts a managed server on the same port. It returns ErrExternal for a
// TRACK_TEST_DSN server.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Close stops a managed server and removes its directory. On a TRACK_TEST_DSN server it does
// nothing. It is safe to call more than once.
func (s *Server) Close() error {
	if !s.managed {
		return nil
	}
	err := s.stop("immediate")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" {
		if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
			err = fmt.Errorf("pgtest: removing the cluster directory: %w", rmErr)
		}
		s.dir = ""
	}
	return err
}

// Schema is a randomly named schema that exists for the duration of one test.
type Schema struct {
	// Name is the schema's name, safe to use unquoted (lowercase letters, digits and underscores).
	Name string
	// DSN connects to the server with search_path set to the schema.
	DSN string
	// ServerDSN connects to the server without a search_path.
	ServerDSN string
}

// NewSchema creates a random schema on the Shared server and drops it (with everything in it) when
// tb's test ends. It fails tb when no server can be had. It is safe for concurrent use.
func NewSchema(tb testing.TB) *Schema {
	tb.Helper()
	return Shared(tb).NewSchema(tb)
}

// NewSchema creates a random schema on s and drops it when tb's test ends. It is safe for concurrent use.
func (s *Server) NewSchema(tb testing.TB) *Schema {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		tb.Fatalf("pgtest: connecting to %s: %v", redact(s.dsn), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("pgtest: creating schema %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.dsn)
		if err != nil {
			tb.Errorf("pgtest: dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("pgtest: dropping schema %s: %v", name, err)
		}
	})
	return &Schema{Name: name, DSN: WithSearchPath(s.dsn, name), ServerDSN: s.dsn}
}

// Pool opens a pgxpool on the schema (search_path set) and closes it when tb's test ends.
func (sc *Schema) Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), sc.DSN)
	if err != nil {
		tb.Fatalf("pgtest: opening a pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// WithSearchPath returns dsn with its search_path run-time parameter set to schema. It accepts URL
// (postgres://) and keyword/value DSNs.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "the server"
	}
	return u.Redacted()
}
