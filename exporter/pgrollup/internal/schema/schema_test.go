package schema

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/trackhq/track/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestResolutions checks the properties the write path relies on: finest first, each width a
// multiple of the finer one, indexes matching positions, a retention of at least the width.
func TestResolutions(t *testing.T) {
	for i, r := range Resolutions {
		assert.Equal(t, i, r.Index)
		assert.GreaterOrEqual(t, r.DefaultRetention, r.Width, r.Name)
		if i > 0 {
			assert.Zero(t, r.Width%Resolutions[i-1].Width, r.Name)
			assert.Greater(t, r.Width, Resolutions[i-1].Width, r.Name)
		}
	}
}

// TestCutoff: a bucket expires exactly when its end is at or before now - retention.
func TestCutoff(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, r := range Resolutions {
		retention := 3 * r.Width
		cut := r.Cutoff(now, retention)
		for _, start := range []time.Time{cut.Add(-r.Width), cut, cut.Add(time.Second), cut.Add(r.Width)} {
			expired := !start.After(cut)
			assert.Equal(t, !start.Add(r.Width).After(now.Add(-retention)), expired, "%s bucket at %s", r.Name, start)
		}
	}
}

// TestStatementsRender: every statement renders for a schema that needs quoting, with no template
// text or comment left, and the per-resolution ones name their own tables.
func TestStatementsRender(t *testing.T) {
	s := New("My Schema")
	all := []string{s.CreateStage, s.CopyStage, s.InsertKeys, s.InsertSeries, s.SelectSeries, s.SelectMetric,
		s.AdvanceStreams, s.UpdateStreams, s.InsertStreams, s.ExpireStreams, s.ExpireKeys, s.RecordRetention,
		s.EnsurePartitions, s.DropPartitions, s.Lock, s.TryLock, s.Unlock, s.MigrationsTable, s.RecordMigration, s.Applied}
	for i, r := range Resolutions {
		all = append(all, s.Upsert[i], s.UpsertTotals[i], s.ExpireRollup[i], s.ExpireTotals[i])
		assert.Contains(t, s.Upsert[i], `"My Schema".`+r.Table+` AS r`)
		assert.Contains(t, s.Upsert[i], "WHERE res = "+string(rune('0'+i))+" ")
		assert.Contains(t, s.UpsertTotals[i], `"My Schema".`+r.Totals+` AS r`)
		assert.Contains(t, s.ExpireRollup[i], `"My Schema".`+r.Table+` WHERE time <= $1 LIMIT 5000`)
	}
	for _, q := range all {
		assert.NotEmpty(t, q)
		assert.NotContains(t, q, "{{")
		assert.NotContains(t, q, "--")
		assert.NotContains(t, q, "<no value>")
	}
}

// TestMigrateAndCheck applies the migrations twice (the second time applies none), checks them,
// and finds an empty schema outdated.
func TestMigrateAndCheck(t *testing.T) {
	sc := pgtest.NewSchema(t)
	pool := sc.Pool(t)
	ctx := context.Background()
	require.ErrorIs(t, Check(ctx, pool, sc.Name), ErrOutdated)
	migs, err := Load(sc.Name)
	require.NoError(t, err)
	done, err := Migrate(ctx, pool, sc.Name)
	require.NoError(t, err)
	assert.Equal(t, migs, done)
	done, err = Migrate(ctx, pool, sc.Name)
	require.NoError(t, err)
	assert.Empty(t, done)
	require.NoError(t, Check(ctx, pool, sc.Name))
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	applied, err := ListApplied(ctx, conn.Conn(), sc.Name)
	require.NoError(t, err)
	require.Len(t, applied, len(migs))
	for i, a := range applied {
		assert.Equal(t, migs[i].Version, a.Version)
		assert.Equal(t, migs[i].Name, a.Name)
	}
}

// TestGrantsName: the grants name every resolution's tables and views, quoted roles, one
// statement per line.
func TestGrantsName(t *testing.T) {
	g := strings.Join(Grants("track", "w", "a"), "\n")
	for _, r := range Resolutions {
		assert.Contains(t, g, `"track".`+r.Table+", ")
		assert.Contains(t, g, `"track".`+r.Totals+", ")
		assert.Contains(t, g, `"track".`+r.View)
	}
	for _, line := range Grants("track", "w", "a") {
		assert.True(t, strings.HasPrefix(line, "GRANT "), line)
		assert.True(t, strings.HasSuffix(line, ` TO "w"`) || strings.HasSuffix(line, ` TO "a"`), line)
	}
}

// TestMigrationsUnchanged pins what migrations 001 to 005 mean: rendered as templates, they are
// their files with only the quoted schema substituted, as when they were first applied.
func TestMigrationsUnchanged(t *testing.T) {
	migs, err := Load("My Schema")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(migs), 5)
	for _, m := range migs[:5] {
		raw, err := migrationFiles.ReadFile("migrations/" + m.Name)
		require.NoError(t, err)
		assert.Equal(t, strings.ReplaceAll(string(raw), "{{schema}}", `"My Schema"`), m.SQL, m.Name)
	}
}

// TestRenderMigrationList: a migration's own list of resolutions renders per entry.
func TestRenderMigrationList(t *testing.T) {
	got, err := renderMigration("t", `{{range list "minute" "hour"}}ANALYZE {{schema}}.rollup_{{.}};{{end}}`, "track")
	require.NoError(t, err)
	assert.Equal(t, `ANALYZE "track".rollup_minute;ANALYZE "track".rollup_hour;`, got)
	_, err = renderMigration("t", `{{nope}}`, "track")
	assert.ErrorContains(t, err, "migration t")
}
