package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/trackhq/track/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }

// env is an environment for execute: the variables it holds are set, all others unset.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// result is what one run of trackchart printed and its exit status.
type result struct {
	code           int
	stdout, stderr string
}

func runChart(t *testing.T, e env, args ...string) result {
	t.Helper()
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := execute(ctx, args, e.lookup, &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

const secretDSN = "postgres://analyst:s3cret-Pw@127.0.0.1:1/track?sslmode=disable&connect_timeout=5"

// TestHelp: -h, --help and help print the usage on stdout and exit 0; the usage shows the DSN of
// the environment with its password masked.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}, {"anomalies", "-h"}, {"-metric", "x", "--help"}} {
		r := runChart(t, env{envDSN: secretDSN}, args...)
		assert.Equal(t, exitOK, r.code, "%v", args)
		assert.Empty(t, r.stderr, "%v", args)
		assert.Contains(t, r.stdout, "usage:", "%v", args)
		assert.Contains(t, r.stdout, "-since", "%v", args)
		assert.Contains(t, r.stdout, "postgres://analyst:xxxxx@127.0.0.1:1/track", "%v", args)
		assert.NotContains(t, r.stdout, "s3cret", "%v", args)
	}
	r := runChart(t, env{}, "anomalies", "-h")
	assert.NotContains(t, r.stdout, "-filter", "anomalies lists a metric's total")
}

// TestFlagErrors: every refusal of the command line names its flag, exits 2 and prints no secret,
// before any connection is tried.
func TestFlagErrors(t *testing.T) {
	ok := []string{"-metric", "m"}
	tests := []struct {
		name string
		args []string
		env  env
		want string
	}{
		{"no metric", nil, env{envDSN: secretDSN}, "-metric is required"},
		{"no dsn", ok, env{}, "-dsn is required"},
		{"empty dsn in the environment", ok, env{envDSN: ""}, "-dsn is required"},
		{"bad dsn", append([]string{"-dsn", "postgres://analyst:s3cret-Pw@127.0.0.1:notaport/x"}, ok...), env{}, "-dsn: "},
		{"unknown flag", append([]string{"-colour"}, ok...), env{envDSN: secretDSN}, "-colour"},
		{"bad schema", append([]string{"-schema", "A;"}, ok...), env{envDSN: secretDSN}, "-schema: \"A;\" is not a lowercase SQL identifier"},
		{"bad since unit", append([]string{"-since", "7x"}, ok...), env{envDSN: secretDSN}, "flag -since: want numbers with units"},
		{"zero since", append([]string{"-since", "0d"}, ok...), env{envDSN: secretDSN}, "flag -since: must be longer than zero"},
		{"half a day", append([]string{"-step", "1.5d"}, ok...), env{envDSN: secretDSN}, "flag -step: 1.5d: days"},
		{"negative step", append([]string{"-step", "-1m"}, ok...), env{envDSN: secretDSN}, "flag -step"},
		{"empty step", append([]string{"-step", ""}, ok...), env{envDSN: secretDSN}, "flag -step"},
		{"bad filter", append([]string{"-filter", "service=login"}, ok...), env{envDSN: secretDSN}, "-filter: service=login is not a JSON object"},
		{"filter not an object", append([]string{"-filter", `["a"]`}, ok...), env{envDSN: secretDSN}, "-filter: "},
		{"filter null", append([]string{"-filter", `null`}, ok...), env{envDSN: secretDSN}, "-filter: "},
		{"height", append([]string{"-height", "0"}, ok...), env{envDSN: secretDSN}, "-height: must be at least 1"},
		{"height not a number", append([]string{"-height", "tall"}, ok...), env{envDSN: secretDSN}, "flag -height"},
		{"width", append([]string{"-width", "3"}, ok...), env{envDSN: secretDSN}, "-width: must be at least 8"},
		{"timeout", append([]string{"-timeout", "0s"}, ok...), env{envDSN: secretDSN}, "-timeout: must be positive"},
		{"unknown zone", append([]string{"-tz", "Mars/Olympus"}, ok...), env{envDSN: secretDSN}, `-tz: unknown time zone "Mars/Olympus"`},
		{"Local is no zone for Postgres", append([]string{"-tz", "Local"}, ok...), env{envDSN: secretDSN}, `-tz: "Local" is not a zone name`},
		{"tz and utc", append([]string{"-tz", "UTC", "-utc"}, ok...), env{envDSN: secretDSN}, "-utc and -tz"},
		{"bad zone in TZ", ok, env{envDSN: secretDSN, "TZ": "Nowhere/Land"}, "set -tz"},
		{"bad from", append([]string{"-from", "yesterday"}, ok...), env{envDSN: secretDSN}, `-from: "yesterday" is not a time`},
		{"bad to", append([]string{"-to", "2026-13-01"}, ok...), env{envDSN: secretDSN}, `-to: "2026-13-01" is not a time`},
		{"from and since", append([]string{"-from", "2026-01-01", "-since", "1d"}, ok...), env{envDSN: secretDSN}, "-from and -since"},
		{"empty range", append([]string{"-from", "2026-01-02T00:00:00Z", "-to", "2026-01-01T00:00:00Z"}, ok...), env{envDSN: secretDSN}, "-to (2026-01-01T00:00:00Z) must be after -from"},
		{"unknown command", []string{"draw"}, env{envDSN: secretDSN}, `unknown command "draw"`},
		{"stray argument", append([]string{"extra"}, ok...), env{envDSN: secretDSN}, `unknown command "extra"`},
		{"argument after flags", append(ok, "extra"), env{envDSN: secretDSN}, `unexpected arguments ["extra"]`},
		{"anomalies has no filter", []string{"anomalies", "-filter", "{}"}, env{envDSN: secretDSN}, "-filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runChart(t, tt.env, tt.args...)
			assert.Equal(t, exitUsage, r.code)
			assert.Empty(t, r.stdout)
			assert.Contains(t, r.stderr, tt.want)
			assert.True(t, strings.HasPrefix(r.stderr, "trackchart: "), r.stderr)
			assert.NotContains(t, r.stderr, "s3cret")
			assert.NotContains(t, r.stderr, "connecting", "refused before connecting")
		})
	}
}

// TestConnectionErrorsHideThePassword: pgx's connection errors reach the user without the
// password of the DSN, in URL and keyword/value form, from -dsn or the environment; exit 1.
func TestConnectionErrorsHideThePassword(t *testing.T) {
	kv := "host=127.0.0.1 port=1 user=analyst password='s3cret-Pw' dbname=track connect_timeout=5"
	for _, tt := range []struct {
		name string
		env  env
		args []string
	}{
		{"url in the environment", env{envDSN: secretDSN}, nil},
		{"url in -dsn", env{}, []string{"-dsn", secretDSN}},
		{"keyword/value in -dsn", env{}, []string{"-dsn", kv}},
		{"password in the query", env{}, []string{"-dsn", "postgres://analyst@127.0.0.1:1/track?password=s3cret-Pw&connect_timeout=5"}},
		{"listing anomalies", env{envDSN: secretDSN}, []string{"anomalies"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if len(args) == 0 || args[0] != "anomalies" {
				args = append(args, "-metric", "new-signup")
			}
			r := runChart(t, tt.env, args...)
			assert.Equal(t, exitFailure, r.code, r.stderr)
			assert.Contains(t, r.stderr, "trackchart: connecting: ")
			assert.NotContains(t, r.stderr, "s3cret")
		})
	}
}

// TestTimeout: a server that accepts and never answers is an error naming -timeout, exit 1.
func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		_ = l.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	dsn := "postgres://analyst:s3cret-Pw@" + l.Addr().String() + "/track?sslmode=disable"
	r := runChart(t, env{envDSN: dsn}, "-metric", "new-signup", "-timeout", "300ms")
	assert.Equal(t, exitFailure, r.code, r.stderr)
	assert.Contains(t, r.stderr, "(no answer within -timeout 300ms)")
	assert.NotContains(t, r.stderr, "s3cret")
}
