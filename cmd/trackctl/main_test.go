package main

import (
	"bytes"
	"context"
	"flag"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/trackhq/track/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var b bytes.Buffer
	err := run(context.Background(), args, &b)
	return b.String(), err
}

// TestMigrateStatus: status on an empty schema lists every migration as pending and fails;
// migrate applies them all, once; status then shows them applied, the default retention and the
// row counts of every table.
func TestMigrateStatus(t *testing.T) {
	sc := pgtest.NewSchema(t)
	out, err := runOut(t, "status", "-dsn", sc.ServerDSN, "-schema", sc.Name)
	require.ErrorIs(t, err, errPending)
	assert.Regexp(t, `001_init\.up\.sql\s+pending\n`, out)

	out, err = runOut(t, "migrate", "-dsn", sc.ServerDSN, "-schema", sc.Name)
	require.NoError(t, err)
	assert.Contains(t, out, "applied 001_init.up.sql\n")
	assert.Contains(t, out, "applied 005_funnel_ties.up.sql\n")
	out, err = runOut(t, "migrate", "-dsn", sc.ServerDSN, "-schema", sc.Name)
	require.NoError(t, err)
	assert.Equal(t, "schema "+sc.Name+" is up to date\n", out)

	out, err = runOut(t, "status", "-dsn", sc.ServerDSN, "-schema", sc.Name)
	require.NoError(t, err)
	assert.NotContains(t, out, "pending")
	assert.Regexp(t, `001_init\.up\.sql\s+\d{4}-\d\d-\d\dT`, out)
	assert.Regexp(t, `minute\s+1m0s\s+14d\n`, out)
	assert.Regexp(t, `day\s+1d\s+3y\n`, out)
	assert.Regexp(t, `rollup_hour\s+0\n`, out)
	assert.Regexp(t, `cumulative_streams\s+0\n`, out)
}

// TestGrants: the printed grants are the applied ones; applied to real roles they let the analyst
// read a view and not a table.
func TestGrants(t *testing.T) {
	sc := pgtest.NewSchema(t)
	_, err := runOut(t, "migrate", "-dsn", sc.ServerDSN, "-schema", sc.Name)
	require.NoError(t, err)
	suffix := strings.TrimPrefix(sc.Name, "t_")
	writer, analyst := "cw_"+suffix, "ca_"+suffix
	printed, err := runOut(t, "grants", "-schema", sc.Name, "-writer", writer, "-analyst", analyst)
	require.NoError(t, err)
	assert.Contains(t, printed, `GRANT SELECT, INSERT ON "`+sc.Name+`".series TO "`+writer+`";`)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, sc.ServerDSN)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = runOut(t, "grants", "-apply", "-dsn", sc.ServerDSN, "-schema", sc.Name, "-writer", writer, "-analyst", analyst)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the roles must exist")
	assert.Equal(t, pgerrcode.UndefinedObject, pgErr.Code, "the roles must exist")
	for _, r := range []string{writer, analyst} {
		_, err := conn.Exec(ctx, "CREATE ROLE "+r+" LOGIN")
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, r := range []string{writer, analyst} {
			_, _ = conn.Exec(context.Background(), "DROP OWNED BY "+r)
			_, _ = conn.Exec(context.Background(), "DROP ROLE "+r)
		}
	})
	out, err := runOut(t, "grants", "-apply", "-dsn", sc.ServerDSN, "-schema", sc.Name, "-writer", writer, "-analyst", analyst)
	require.NoError(t, err)
	assert.Equal(t, strings.Count(printed, "\n"), strings.Count(printed, ";\n"))
	assert.Contains(t, out, "applied ")

	ac, err := pgx.Connect(ctx, strings.Replace(sc.ServerDSN, "postgres://postgres@", "postgres://"+analyst+"@", 1))
	require.NoError(t, err)
	defer ac.Close(ctx)
	var n int
	require.NoError(t, ac.QueryRow(ctx, "SELECT count(*) FROM "+sc.Name+".minutely").Scan(&n))
	_, err = ac.Exec(ctx, "SELECT 1 FROM "+sc.Name+".rollup_minute")
	assert.ErrorContains(t, err, "permission denied")
}

// TestUsage: bad commands and flags are refused with a message, before any connection.
func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage: trackctl"},
		{[]string{"drop"}, `unknown command "drop"`},
		{[]string{"status", "-schema", "Bad"}, `-schema "Bad" is not a lowercase SQL identifier`},
		{[]string{"grants", "-writer", "x;y"}, `role "x;y" is not`},
		{[]string{"migrate", "-dsn", ""}, "-dsn is required"},
		{[]string{"status", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		_, err := runOut(t, tt.args...)
		assert.ErrorContains(t, err, tt.want, tt.args)
	}
}

// TestHelpHidesTheEnvironmentsDSN: -h prints the flags' defaults; the DSN from $TRACK_PG_DSN, which may hold a
// password, is not among them.
func TestHelpHidesTheEnvironmentsDSN(t *testing.T) {
	t.Setenv("TRACK_PG_DSN", "postgres://owner:s3cret-pw@db.invalid/track")
	out, err := runOut(t, "migrate", "-h")
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, out, "$TRACK_PG_DSN")
	assert.NotContains(t, out, "s3cret-pw")
}
