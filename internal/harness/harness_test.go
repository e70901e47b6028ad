package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeCollector writes an executable shell script standing in for otelcol-track.
func fakeCollector(t *testing.T, script string) Options {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "otelcol-track")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o700))
	return Options{Name: "fake", Binary: bin, Configs: []string{"collector.yaml"}, DataDir: filepath.Join(dir, "data"),
		LogPath: filepath.Join(dir, "collector.log"), Logger: t}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	ok := fakeCollector(t, "exit 0")
	for name, change := range map[string]func(*Options){
		"no binary":      func(o *Options) { o.Binary = "" },
		"missing binary": func(o *Options) { o.Binary = filepath.Join(t.TempDir(), "nothing") },
		"no config":      func(o *Options) { o.Configs = nil },
		"no data dir":    func(o *Options) { o.DataDir = "" },
		"no log":         func(o *Options) { o.LogPath = "" },
	} {
		t.Run(name, func(t *testing.T) {
			o := ok
			change(&o)
			_, err := New(o)
			assert.Error(t, err)
		})
	}
}

func TestPortsAreFreeAndDistinct(t *testing.T) {
	c, err := New(fakeCollector(t, "exit 0"))
	require.NoError(t, err)
	addrs := []string{c.GRPC, c.HTTP, c.Web, c.Health, fmt.Sprintf("127.0.0.1:%d", c.Pprof), fmt.Sprintf("127.0.0.1:%d", c.Metrics)}
	seen := map[string]bool{}
	for _, a := range addrs {
		assert.False(t, seen[a], "%s given twice", a)
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if assert.NoError(t, err, "%s is free", a) {
			l.Close()
		}
	}
}

func TestEnvironNamesEveryEndpoint(t *testing.T) {
	o := fakeCollector(t, "exit 0")
	o.DSN, o.WebOrigin = "postgres://db/track", "http://localhost:9999"
	o.Env = []string{"TRACK_PG_DSN=postgres://override/track"}
	c, err := New(o)
	require.NoError(t, err)
	env := c.Environ()
	last := func(key string) string {
		v := ""
		for _, kv := range env {
			if k, val, _ := strings.Cut(kv, "="); k == key {
				v = val
			}
		}
		return v
	}
	assert.Equal(t, c.GRPC, last("TRACK_OTLP_GRPC_ENDPOINT"))
	assert.Equal(t, c.HTTP, last("TRACK_OTLP_HTTP_ENDPOINT"))
	assert.Equal(t, c.Web, last("TRACK_WEB_ENDPOINT"))
	assert.Equal(t, c.Health, last("TRACK_HEALTH_ENDPOINT"))
	assert.Equal(t, fmt.Sprint(c.Metrics), last("TRACK_TELEMETRY_PORT"))
	assert.Equal(t, o.DataDir, last("TRACK_DATA_DIR"))
	assert.Equal(t, o.WebOrigin, last("TRACK_WEB_ALLOWED_ORIGIN"))
	assert.Equal(t, "postgres://override/track", last("TRACK_PG_DSN"), "Opts.Env comes last and wins")
}

func TestGoRuntimeEnvLeavesTheUsersSettings(t *testing.T) {
	t.Setenv("GOGC", "50")
	env := GoRuntimeEnv()
	assert.False(t, slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") }))
	os.Unsetenv("GOGC")
	assert.Contains(t, GoRuntimeEnv(), "GOGC="+RecommendedGOGC)
}

func TestStartTriesNewPortsWhenOneIsTaken(t *testing.T) {
	o := fakeCollector(t, `echo "listen tcp $TRACK_OTLP_GRPC_ENDPOINT: bind: address already in use"; exit 1`)
	c, err := New(o)
	require.NoError(t, err)
	first := c.GRPC
	err = c.Start(context.Background())
	require.ErrorIs(t, err, ErrPortTaken)
	assert.NotEqual(t, first, c.GRPC, "it moved to other ports")
	log, err := os.ReadFile(o.LogPath)
	require.NoError(t, err)
	assert.Equal(t, 5, strings.Count(string(log), "==== start"), "five attempts")
	assert.Zero(t, c.PID())
}

func TestStartReportsAnEarlyExitWithTheLog(t *testing.T) {
	c, err := New(fakeCollector(t, `echo "cannot parse the config"; exit 1`))
	require.NoError(t, err)
	err = c.Start(context.Background())
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrPortTaken)
	assert.Contains(t, err.Error(), "cannot parse the config")
}

func TestStopAndKill(t *testing.T) {
	// A degraded start returns once the gRPC port answers: the test listens on it for the fake.
	o := fakeCollector(t, `trap 'exit 0' TERM; echo ready; while :; do sleep 0.1; done`)
	o.Degraded = true
	c, err := New(o)
	require.NoError(t, err)
	l, err := net.Listen("tcp", c.GRPC) // the port "answers"
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	require.NoError(t, c.Start(context.Background()))
	require.NotZero(t, c.PID())
	waitReady(t, c)
	require.NoError(t, c.Stop(10*time.Second), "the process ends on SIGTERM")
	assert.Zero(t, c.PID())

	o2 := fakeCollector(t, `trap '' TERM; echo ready; while :; do sleep 0.1; done`)
	o2.Degraded = true
	c2, err := New(o2)
	require.NoError(t, err)
	c2.GRPC = c.GRPC
	require.NoError(t, c2.Start(context.Background()))
	waitReady(t, c2)
	start := time.Now()
	assert.Error(t, c2.Stop(500*time.Millisecond), "a process ignoring SIGTERM is killed, and Stop says so")
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Zero(t, c2.PID())

	require.NoError(t, c2.Start(context.Background()))
	c2.Kill()
	assert.Zero(t, c2.PID())
	assert.Nil(t, c2.Exited())
}

// waitReady waits until the fake collector has set its signal traps (it then logs "ready").
func waitReady(t *testing.T, c *Collector) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.HasSuffix(c.LogTail(100), "ready\n") }, 10*time.Second, 10*time.Millisecond)
}
