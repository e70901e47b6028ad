package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/trackhq/track/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.M(m))
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
