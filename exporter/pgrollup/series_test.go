package pgrollup

import (
	"context"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/internal/pgtest"
)

// series001 returns migration 001's definition of the function series for schema (unquoted), renamed
// series_001: the reference that later versions must agree with, and the baseline of
// BenchmarkSeriesQuery6hPerMinute.
func series001(tb testing.TB, name string) string {
	tb.Helper()
	return seriesOf(tb, name, 1)
}

// seriesOf returns the definition of the function series by migration version (1 or 3) for schema
// (unquoted), renamed series_00<version>.
func seriesOf(tb testing.TB, name string, version int) string {
	tb.Helper()
	migs, err := schema.Load(name)
	require.NoError(tb, err)
	m := migs[slices.IndexFunc(migs, func(m schema.Migration) bool { return m.Version == version })]
	sql := m.SQL
	start := strings.Index(sql, "FUNCTION "+schema.Quote(name)+".series(")
	require.Positive(tb, start, "migration %d defines series", version)
	start = strings.LastIndex(sql[:start], "CREATE ")
	const end = "\n$fn$;"
	n := strings.Index(sql[start:], end)
	require.Positive(tb, n)
	return strings.Replace(sql[start:start+n+len(end)], ".series(", fmt.Sprintf(".series_%03d(", version), 1)
}

// TestSeriesMatches001 checks that series (migrations 003 and 006) returns exactly what 001's
// definition returns, row for row and in order, in UTC, for every resolution, steps equal to and
// different from the resolution's width, unaligned and past ranges, gaps, and filters on attributes
// and service; and that it raises the same errors for bad ranges and steps. (006 refuses what 001
// answered wrongly: an unknown metric, a range older than every retention, a step that splits the
// buckets read; TestSeriesErrors covers those.)
func TestSeriesMatches001(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	s := te.schema
	_, err := te.pool.Exec(ctx, series001(t, te.sc.Name))
	require.NoError(t, err)
	// Series 1-6 of metric m (services a and b, two routes), 7 of metric other. Rows are aligned to
	// their resolution's width, as the exporter writes them; every 11th bucket is missing (a gap),
	// values are small integers (sums exact in any order), some 0.
	now := time.Now().UTC()
	for _, q := range []string{
		`INSERT INTO ` + s + `.series (id, key, metric, service, attributes)
SELECT g, gen_random_uuid(), CASE WHEN g = 7 THEN 'other' ELSE 'm' END, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END,
       jsonb_build_object('route', '/r/' || (g % 3))
  FROM generate_series(1, 7) g`,
		`INSERT INTO ` + s + `.rollup_minute (series_id, time, value)
SELECT g, date_trunc('minute', $1::timestamptz) - make_interval(mins => m), (g * 7 + m) % 5
  FROM generate_series(1, 7) g, generate_series(-30, 3 * 1440) m WHERE (g + m) % 11 <> 0`,
		`INSERT INTO ` + s + `.rollup_hour (series_id, time, value)
SELECT g, date_trunc('hour', $1::timestamptz) - make_interval(hours => h), (g * 3 + h) % 7
  FROM generate_series(1, 7) g, generate_series(-3, 120 * 24) h WHERE (g + h) % 11 <> 0`,
		`INSERT INTO ` + s + `.rollup_day (series_id, time, value)
SELECT g, date_trunc('day', $1::timestamptz) - make_interval(days => d), (g + d) % 9
  FROM generate_series(1, 7) g, generate_series(-2, 400) d WHERE (g + d) % 11 <> 0`,
		`ANALYZE ` + s + `.series, ` + s + `.rollup_minute, ` + s + `.rollup_hour, ` + s + `.rollup_day`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{now}
		}
		_, err := te.pool.Exec(ctx, q, args...)
		require.NoError(t, err, q)
	}
	recomputeTotals(t, te.pool, s)

	type call struct {
		since, until time.Duration // before now
		step         string
	}
	calls := []call{
		{6 * time.Hour, 0, "1 minute"},                             // minute, step = width
		{6*time.Hour + 17*time.Second, 0, "1 minute"},              // unaligned since
		{6 * time.Hour, 0, "5 minutes"},                            // minute, date_bin
		{2 * 24 * time.Hour, time.Hour + 30*time.Second, "1 hour"}, // minute, a past range
		{30 * 24 * time.Hour, 0, "1 hour"},                         // hour, step = width
		{30 * 24 * time.Hour, 2 * 24 * time.Hour, "1 hour"},        // hour, step = width, a past range
		{30 * 24 * time.Hour, 0, "2 hours"},                        // hour, date_bin
		{60 * 24 * time.Hour, 5 * 24 * time.Hour, "1 day"},         // hour, date_bin
		{200 * 24 * time.Hour, 0, "1 day"},                         // day, step = width
		{200 * 24 * time.Hour, 10 * 24 * time.Hour, "1 day"},       // day, step = width, a past range
		{200 * 24 * time.Hour, 0, "24 hours"},                      // day, equal to the width
		{365 * 24 * time.Hour, 0, "7 days"},                        // day, date_bin
	}
	filters := []*string{nil}
	for _, f := range []string{`{}`, `{"service": "a"}`, `{"route": "/r/1"}`, `{"service": "b", "route": "/r/1"}`, `{"route": "/none"}`} {
		filters = append(filters, &f)
	}
	read := func(fn, metric string, c call, filter *string) [][2]any {
		rows, err := te.pool.Query(ctx, "SELECT time, value FROM "+s+"."+fn+"($1, $2, $3, $4::interval, coalesce($5::jsonb, '{}'))",
			metric, now.Add(-c.since), now.Add(-c.until), c.step, filter)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]any, error) {
			var at time.Time
			var v float64
			err := r.Scan(&at, &v)
			return [2]any{at.UTC(), v}, err
		})
		require.NoError(t, err)
		return out
	}
	for _, metric := range []string{"m", "other"} {
		for _, c := range calls {
			for _, f := range filters {
				name := fmt.Sprintf("%s/%v-%v/%s/%v", metric, c.since, c.until, c.step, f)
				if f != nil {
					name = fmt.Sprintf("%s/%v-%v/%s/%s", metric, c.since, c.until, c.step, *f)
				}
				want := read("series_001", metric, c, f)
				if f != nil && *f != "{}" {
					var matches bool
					require.NoError(t, te.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM "+s+".series WHERE metric = $1 AND (attributes || jsonb_build_object('service', service)) @> $2::jsonb)",
						metric, *f).Scan(&matches))
					if !matches {
						// 001 read zeros for a filter no series matches (a mistyped key or value); 006 refuses it.
						_, err := te.pool.Exec(ctx, "SELECT * FROM "+s+".series($1, $2, $3, $4::interval, $5::jsonb)",
							metric, now.Add(-c.since), now.Add(-c.until), c.step, *f)
						var pgErr *pgconn.PgError
						require.ErrorAs(t, err, &pgErr, name)
						assert.Equal(t, pgerrcode.InvalidParameterValue, pgErr.Code, name)
						assert.Contains(t, pgErr.Message, "matches no series", name)
						assert.Contains(t, pgErr.Hint, "route", name)
						continue
					}
				}
				// Several calls, so that PL/pgSQL's cached plans of both functions are used too.
				for range 3 {
					got := read("series", metric, c, f)
					require.Equal(t, want, got, name)
				}
				require.NotEmpty(t, want, name)
			}
		}
	}

	for _, args := range []string{
		`'m', now(), now() - interval '1 hour', interval '1 minute'`,
		`'m', now(), now(), interval '1 minute'`,
		`'m', NULL, now(), interval '1 minute'`,
		`'m', now() - interval '1 hour', now(), interval '0 minutes'`,
		`'m', now() - interval '1 hour', now(), interval '-1 minute'`,
		`'m', now() - interval '1 hour', now(), NULL`,
	} {
		_, want := te.pool.Exec(ctx, "SELECT * FROM "+s+".series_001("+args+")")
		require.Error(t, want, args)
		_, got := te.pool.Exec(ctx, "SELECT * FROM "+s+".series("+args+")")
		require.Error(t, got, args)
		// The messages carry now(), which differs between the two statements: compare up to it.
		assert.Equal(t, strings.SplitN(want.Error(), "(", 2)[0], strings.SplitN(got.Error(), "(", 2)[0], args)
		assert.Contains(t, got.Error(), "series: ", args)
	}
}

// TestSeriesUpgradeKeepsGrants applies migrations 001 and 002 as an older exporter did, stores some
// counts, grants EXECUTE on series to an analyst role, then starts the exporter: migration 003 computes
// the totals of the stored counts and replaces the function, and 006 replaces it with one of six
// arguments; the analyst keeps EXECUTE (and may read what is complete), the function stays SECURITY
// DEFINER and closed to PUBLIC.
func TestSeriesUpgradeKeepsGrants(t *testing.T) {
	sc := pgtest.NewSchema(t)
	ctx := context.Background()
	pool := sc.Pool(t)
	q := schema.Quote(sc.Name)
	migs, err := schema.Load(sc.Name)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "CREATE TABLE "+q+".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
	require.NoError(t, err)
	for _, m := range migs {
		if m.Version >= 3 {
			continue
		}
		_, err := pool.Exec(ctx, m.SQL)
		require.NoError(t, err, m.Name)
		_, err = pool.Exec(ctx, "INSERT INTO "+q+".schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
		require.NoError(t, err)
	}
	analyst := "a_" + strings.TrimPrefix(sc.Name, "t_")
	for _, stmt := range []string{
		"CREATE ROLE " + analyst + " LOGIN",
		"GRANT USAGE ON SCHEMA " + q + " TO " + analyst,
		"GRANT EXECUTE ON FUNCTION " + q + ".series(text, timestamptz, timestamptz, interval, jsonb) TO " + analyst,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP OWNED BY "+analyst)
		_, _ = pool.Exec(context.Background(), "DROP ROLE "+analyst)
	})

	// Counts stored before the upgrade: migration 003 computes their totals.
	for _, stmt := range []string{
		`INSERT INTO ` + q + `.series (id, key, metric, service, attributes)
SELECT g, gen_random_uuid(), 'before-' || (g % 2), 'svc', jsonb_build_object('k', g) FROM generate_series(1000001, 1000006) g`,
		`INSERT INTO ` + q + `.rollup_minute SELECT g, date_trunc('minute', now()) - make_interval(mins => m), g % 10 * m
  FROM generate_series(1000001, 1000006) g, generate_series(1, 90) m`,
		`INSERT INTO ` + q + `.rollup_hour SELECT g, date_trunc('hour', now()) - make_interval(hours => h), g % 10 + h
  FROM generate_series(1000001, 1000006) g, generate_series(0, 2) h`,
		`INSERT INTO ` + q + `.rollup_day SELECT g, date_trunc('day', now()), 3 * (g % 10) FROM generate_series(1000001, 1000006) g`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}

	te := startExporter(t, sc)
	var applied int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+q+".schema_migrations WHERE version = 3").Scan(&applied))
	require.Equal(t, 1, applied, "the exporter applies 003 to a schema at 002")
	var totals int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+q+".total_minute").Scan(&totals))
	assert.Equal(t, 2*90, totals, "two metrics x 90 minutes")
	assertTotalsAgree(t, pool, q)
	// 006 replaced the function with one of six arguments, carrying the grant over.
	fn := q + ".series(text, timestamptz, timestamptz, interval, jsonb, text)"
	var src string
	var secdef, granted, public bool
	var config []string
	require.NoError(t, pool.QueryRow(ctx, `SELECT prosrc, prosecdef, proconfig,
       has_function_privilege($2::name, p.oid, 'EXECUTE'),
       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
  FROM pg_proc p WHERE p.oid = $1::regprocedure`, fn, analyst).Scan(&src, &secdef, &config, &granted, &public))
	assert.Contains(t, src, "series_id = ANY(ids)", "006's body")
	assert.Contains(t, src, "total_minute", "006's body")
	assert.True(t, secdef, "SECURITY DEFINER")
	assert.ElementsMatch(t, []string{"search_path=pg_catalog, pg_temp", "plan_cache_mode=force_generic_plan"}, config)
	assert.True(t, granted, "the analyst keeps EXECUTE")
	assert.False(t, public, "PUBLIC has no EXECUTE")

	at := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	te.push(t, pt{metric: "upgraded", service: "svc", at: at, value: 3, isInt: true})
	conn, err := pgx.Connect(ctx, strings.Replace(sc.ServerDSN, "postgres://postgres@", "postgres://"+analyst+"@", 1))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v float64
	require.NoError(t, conn.QueryRow(ctx, "SELECT sum(value) FROM "+q+".series('upgraded', now() - interval '1 hour', now(), interval '1 minute')").Scan(&v))
	assert.Equal(t, 3.0, v)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+q+".incomplete_ranges(now() - interval '1 hour', now())").Scan(&v))
	assert.Positive(t, v, "the analyst reads incomplete_ranges")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+q+".metrics").Scan(&v))
	assert.Positive(t, v, "the analyst reads the metrics")
	_, err = conn.Exec(ctx, "SELECT 1 FROM "+q+".rollup_minute LIMIT 1")
	require.ErrorContains(t, err, "permission denied")
}
