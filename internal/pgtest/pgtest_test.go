package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/trackhq/track/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.M(m))
}

func TestSchemaIsPrivateAndDropped(t *testing.T) {
	var name string
	var serverDSN string
	t.Run("use", func(t *testing.T) {
		sc := pgtest.NewSchema(t)
		name, serverDSN = sc.Name, sc.ServerDSN
		require.Regexp(t, `^t_[0-9a-f]{12}$`, sc.Name)
		pool := sc.Pool(t)
		ctx := context.Background()
		_, err := pool.Exec(ctx, "CREATE TABLE things (n int)")
		require.NoError(t, err)
		var schema string
		require.NoError(t, pool.QueryRow(ctx,
			"SELECT table_schema FROM information_schema.tables WHERE table_name = 'things' AND table_schema = current_schema()").Scan(&schema))
		assert.Equal(t, sc.Name, schema)
		other := pgtest.NewSchema(t)
		assert.NotEqual(t, sc.Name, other.Name)
	})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, serverDSN)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name).Scan(&n))
	assert.Zero(t, n, "the schema is dropped when the test ends")
}

func TestPrivateServerRestart(t *testing.T) {
	s, err := pgtest.NewServer()
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	require.True(t, s.Managed())
	ctx := context.Background()
	ping := func() error {
		conn, err := pgx.Connect(ctx, s.DSN())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "SELECT 1")
		return err
	}
	require.NoError(t, ping())
	conn, err := pgx.Connect(ctx, s.DSN())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	require.NoError(t, s.Stop())
	require.Error(t, ping(), "a stopped server refuses connections")
	require.NoError(t, s.Start())
	require.NoError(t, ping())
	require.NoError(t, s.Kill())
	require.NoError(t, s.Restart())

	conn, err = pgx.Connect(ctx, s.DSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT n FROM kept").Scan(&n))
	assert.Equal(t, 42, n, "committed data survives a crash and a restart")
}

func TestWithSearchPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=s1&sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db?search_path=s1"},
		{"host=h user=u", "host=h user=u search_path=s1"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, pgtest.WithSearchPath(tt.in, "s1"), tt.in)
	}
}

func TestWatchdogCleansUpAfterTheProcess(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		s, err := pgtest.NewServer()
		require.NoError(t, err)
		fmt.Println("DIR=" + s.Dir())
		os.Exit(0) // no Close: the watchdog must clean up
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogCleansUpAfterTheProcess$")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := cmd.Output()
	require.NoError(t, err, string(out))
	m := regexp.MustCompile(`DIR=(\S+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, string(out))
	require.Eventually(t, func() bool {
		_, err := os.Stat(m[1])
		return os.IsNotExist(err)
	}, 30*time.Second, 100*time.Millisecond, "the watchdog removes %s", m[1])
}

func TestKeptClusterOutlivesTheProcessUntilStopKept(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		s, err := pgtest.NewServer()
		require.NoError(t, err)
		require.NoError(t, s.Keep())
		fmt.Println("DIR=" + s.Dir() + " DSN=" + s.DSN())
		os.Exit(0) // no Close: the watchdog must leave it running
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeptClusterOutlivesTheProcessUntilStopKept$")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := cmd.Output()
	require.NoError(t, err, string(out))
	m := regexp.MustCompile(`DIR=(\S+) DSN=(\S+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, string(out))
	dir, dsn := m[1], m[2]
	ctx := context.Background()
	ping := func() error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	time.Sleep(3 * time.Second) // the watchdog looks once a second
	require.NoError(t, ping(), "the kept cluster still runs after its process exited")

	notKept := t.TempDir()
	require.Error(t, pgtest.StopKept(notKept), "a directory Keep did not mark is refused")
	assert.DirExists(t, notKept)

	require.NoError(t, pgtest.StopKept(dir))
	assert.NoDirExists(t, dir)
	assert.Error(t, ping(), "stopped")
}
