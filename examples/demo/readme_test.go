package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/internal/pgtest"
)

func TestReadmeQueries(t *testing.T) {
	cases := []struct {
		name   string
		md     string
		titles []string
	}{
		{"statements of the section only, in order", "# x\n```sql\nSELECT 0;\n```\n" + readmeSection + "\n\ntext\n```sql\n" +
			"-- First.\nSELECT 1;\n\n-- Second,\n-- on two lines.\nSELECT 2\n  FROM t;   -- trailing comment\n```\n" +
			"```sh\nmake demo;\n```\n### Sub\n```sql\nSELECT 3\n```\n## Next\n```sql\nSELECT 4;\n```\n",
			[]string{"First.", "Second,", "SELECT 3"}},
		{"no section", "# x\n```sql\nSELECT 1;\n```\n", nil},
		{"a block of comments only", readmeSection + "\n```sql\n-- nothing to run\n```\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			qs := readmeQueries("\n" + c.md)
			var titles []string
			for _, q := range qs {
				titles = append(titles, q.title)
				assert.False(t, strings.HasSuffix(q.sql, ";"), "the statement is sent without its semicolon: %q", q.sql)
			}
			assert.Equal(t, c.titles, titles)
		})
	}
}

func TestExpandGrafana(t *testing.T) {
	from, to := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 3, 0, 0, 0, time.FixedZone("x", 3600))
	cases := []struct{ in, want string }{
		{"series('a', $__timeFrom()::timestamptz, $__timeTo()::timestamptz)",
			"series('a', '2026-11-30T01:00:00Z'::timestamptz, '2026-11-30T02:00:00Z'::timestamptz)"},
		{"WHERE $__timeFilter(time) AND $__timeFilter(h.time)",
			"WHERE time BETWEEN '2026-11-30T01:00:00Z' AND '2026-11-30T02:00:00Z' AND h.time BETWEEN '2026-11-30T01:00:00Z' AND '2026-11-30T02:00:00Z'"},
		{"SELECT 1", "SELECT 1"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, expandGrafana(c.in, from, to), c.in)
	}
}

func TestNames(t *testing.T) {
	cases := []struct {
		sql             string
		metrics, events []string
	}{
		{"SELECT * FROM track.series('new-signup', now(), now(), interval '1 minute')", []string{"new-signup"}, nil},
		{"FROM track.hourly WHERE metric = 'card-checked' AND attributes @> '{\"result\": \"fraudulent\"}'", []string{"card-checked"}, nil},
		{"track.series( 'b', x) UNION track.series('a', y) UNION track.series('a', z)", []string{"a", "b"}, nil},
		{"FROM track.funnel(ARRAY['signup_start', 'signup_complete'], now(), now(), interval '1 hour')", nil,
			[]string{"signup_complete", "signup_start"}},
		{"WHERE b.name = 'signup_start' AND c.name='signup_complete'", nil, []string{"signup_complete", "signup_start"}},
		{"FROM track.anomalies(now() - interval '6 hours', now(), interval '5 minutes', 'new-signup')", []string{"new-signup"}, nil},
		{"FROM track.anomalies(now() - interval '1 day', now())", nil, nil},
		{"FROM track.anomalies(now() - interval '1 day', now())\n) SELECT to_char(min(time), 'HH24:MI') FROM a", nil, nil},
		{"FROM track.anomalies(now() - interval '1 day', now(), interval '1 hour', 'card-checked') a, to_char(now(), 'x')", []string{"card-checked"}, nil},
		{"FROM track.anomalies($__timeFrom()::timestamptz, $__timeTo()::timestamptz)", nil, nil},
	}
	for _, c := range cases {
		metrics, events := names(c.sql)
		assert.Equal(t, c.metrics, metrics, c.sql)
		assert.Equal(t, c.events, events, c.sql)
	}
}

// The README's own analysts' section: something to run, each statement with a title and no Grafana
// macro left once expanded, and names of metrics and events for the demo to check.
func TestTheReadmesQueriesAreExtracted(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	qs := readmeQueries(string(b))
	require.NotEmpty(t, qs)
	var all []string
	for _, q := range qs {
		assert.NotEmpty(t, q.title)
		assert.NotContains(t, expandGrafana(q.sql, time.Now().Add(-time.Hour), time.Now()), "$__", q.title)
		metrics, events := names(q.sql)
		all = append(append(all, metrics...), events...)
	}
	assert.NotEmpty(t, all, "the queries name metrics and events")
}

func TestStopKeptPostgres(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".demo"), 0o755))
	require.NoError(t, stopKeptPostgres(root), "nothing kept: nothing to do")

	srv, err := pgtest.NewServer()
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	require.NoError(t, srv.Keep())
	dir := srv.Dir()
	record := filepath.Join(root, keptRecord)
	require.NoError(t, os.WriteFile(record, []byte(dir+"\n"+srv.DSN()+"\n"), 0o600))
	require.NoError(t, stopKeptPostgres(root))
	assert.NoDirExists(t, dir, "the kept cluster is removed")
	assert.NoFileExists(t, record)

	require.NoError(t, os.WriteFile(record, []byte(dir+"\n"), 0o600))
	require.NoError(t, stopKeptPostgres(root), "a record of a cluster already gone is only removed")
	assert.NoFileExists(t, record)
}

func TestChartStep(t *testing.T) {
	cases := []struct {
		minutes int
		want    string
	}{{1, "1m"}, {50, "1m"}, {51, "2m"}, {250, "5m"}, {302, "10m"}, {3000, "60m"}, {3001, "1h"}}
	for _, c := range cases {
		assert.Equal(t, c.want, chartStep(c.minutes), c.minutes)
	}
}
