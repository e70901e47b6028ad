package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/trackhq/track/internal/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv("TRACKWATCH_RUN_MAIN") == "1" {
		main() // the command itself, for TestExitCodes
		os.Exit(0)
	}
	goleak.VerifyTestMain(pgtest.M(m))
}

// TestExitCodes runs the command as a process: 0 for -h, 2 for a wrong command line, 1 when it
// cannot do its job.
func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"-h", []string{"-h"}, 0},
		{"--help", []string{"--help"}, 0},
		{"unknown flag", []string{"-nope"}, 2},
		{"bad value", []string{"-interval", "soon"}, 2},
		{"no webhook", []string{"-dsn", "postgres://127.0.0.1:1/x"}, 2},
		{"Postgres unreachable", []string{"-once", "-dsn", "postgres://analyst:" + password + "@127.0.0.1:1/x?connect_timeout=2",
			"-webhook", "http://127.0.0.1:1" + hookPath}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...) // TestMain runs main before the testing flags are parsed
			cmd.Env = append(os.Environ(), "TRACKWATCH_RUN_MAIN=1", "TRACK_PG_DSN=", "TRACK_WEBHOOK_URL=")
			out, err := cmd.CombinedOutput()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, c.code, code, "%s", out)
			assert.NotContains(t, string(out), password)
			assert.NotContains(t, string(out), "hook-secret")
		})
	}
}

const (
	password = "s3cr3t-pw"
	hookPath = "/services/T000/B000/hook-secret"
)

func TestFlags(t *testing.T) {
	t.Setenv("TRACK_PG_DSN", "postgres://analyst:"+password+"@127.0.0.1:1/track")
	t.Setenv("TRACK_WEBHOOK_URL", "https://hooks.example.com"+hookPath)
	cases := []struct {
		name string
		args []string
		// usage is whether the error is a usage error (exit 2); help whether it is -h (exit 0).
		help, usage bool
		// flag is what the message must name.
		flag string
	}{
		{"-h", []string{"-h"}, true, false, "-webhook"},
		{"--help", []string{"--help"}, true, false, "-dsn"},
		{"unknown flag", []string{"-nope"}, false, true, "-nope"},
		{"bad duration", []string{"-interval", "soon"}, false, true, "-interval"},
		{"zero interval", []string{"-interval", "0s"}, false, true, "-interval"},
		{"negative end-after", []string{"-end-after", "-1m"}, false, true, "-end-after"},
		{"zero retry-for", []string{"-retry-for", "0s"}, false, true, "-retry-for"},
		{"bad schema", []string{"-schema", "Track;drop"}, false, true, "-schema"},
		{"bad time zone", []string{"-tz", "Mars/Olympus"}, false, true, "-tz"},
		{"webhook not http", []string{"-webhook", "ftp://x" + hookPath}, false, true, "-webhook"},
		{"webhook without host", []string{"-webhook", "https://" + hookPath}, false, true, "-webhook"},
		{"stray argument", []string{"now"}, false, true, "unexpected arguments"},
		{"DSN that does not parse", []string{"-dsn", "postgres://analyst:" + password + "@host:port/x"}, false, true, "-dsn"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), c.args, &out)
			require.Error(t, err)
			text := out.String() + err.Error()
			assert.Equal(t, c.help, errors.Is(err, flag.ErrHelp), "%v", err)
			assert.Equal(t, c.usage, errors.As(err, new(*usageError)), "%v", err)
			assert.Contains(t, text, c.flag)
			assert.NotContains(t, text, password, "the DSN's password is never printed")
			assert.NotContains(t, text, "hook-secret", "the webhook's path is never printed")
		})
	}
}

func TestRequiredFlags(t *testing.T) {
	t.Setenv("TRACK_PG_DSN", "")
	t.Setenv("TRACK_WEBHOOK_URL", "")
	err := run(context.Background(), []string{"-webhook", "http://127.0.0.1:1/x"}, &bytes.Buffer{})
	require.ErrorAs(t, err, new(*usageError))
	assert.Contains(t, err.Error(), "-dsn is required")
	err = run(context.Background(), []string{"-dsn", "postgres://127.0.0.1:1/x"}, &bytes.Buffer{})
	require.ErrorAs(t, err, new(*usageError))
	assert.Contains(t, err.Error(), "-webhook is required")
}

func TestUnreachablePostgresIsAnErrorWithoutSecrets(t *testing.T) {
	t.Setenv("TRACK_PG_DSN", "postgres://analyst:"+password+"@127.0.0.1:1/track?connect_timeout=2")
	t.Setenv("TRACK_WEBHOOK_URL", "http://127.0.0.1:1"+hookPath)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-once"}, &out)
	require.Error(t, err)
	assert.NotErrorAs(t, err, new(*usageError), "exit 1, not a usage error")
	text := out.String() + err.Error()
	assert.Contains(t, text, "anomalies_now")
	assert.Contains(t, text, "http://127.0.0.1:1/…", "the webhook is named by its host")
	assert.NotContains(t, text, password)
	assert.NotContains(t, text, "hook-secret")
}
