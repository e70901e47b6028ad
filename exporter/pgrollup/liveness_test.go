package pgrollup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadatatest"
	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/internal/pgtest"
)

// fastLiveness makes an exporter record its liveness every 50ms and count as stopped after 300ms.
func fastLiveness(c *Config) {
	c.Completeness.LivenessInterval = 50 * time.Millisecond
	c.Completeness.StaleAfter = 300 * time.Millisecond
	c.Completeness.Lateness = time.Second
}

// incompleteRange is one row of incomplete_ranges.
type incompleteRange struct {
	Since, Until time.Time
	Reason       string
}

// incomplete returns incomplete_ranges(since, until) and the watermark read in the same statement
// (the same snapshot and now()).
func (te *testExporter) incomplete(t testing.TB, since, until time.Time) ([]incompleteRange, time.Time) {
	t.Helper()
	var w time.Time
	rows, err := te.pool.Query(context.Background(),
		"SELECT r.since, r.until, r.reason, "+te.schema+".watermark() FROM "+te.schema+".incomplete_ranges($1, $2) r", since, until)
	require.NoError(t, err)
	defer rows.Close()
	var out []incompleteRange
	for rows.Next() {
		var r incompleteRange
		require.NoError(t, rows.Scan(&r.Since, &r.Until, &r.Reason, &w))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out, w
}

func (te *testExporter) watermark(t testing.TB) time.Time {
	t.Helper()
	var w time.Time
	require.NoError(t, te.pool.QueryRow(context.Background(), "SELECT "+te.schema+".watermark()").Scan(&w))
	return w
}

// span is one row of collector_spans.
type span struct {
	Since, Until time.Time
}

func (te *testExporter) spans(t testing.TB, collector string) []span {
	t.Helper()
	rows, err := te.pool.Query(context.Background(),
		"SELECT since, until FROM "+te.schema+".collector_spans WHERE collector = $1 ORDER BY since", collector)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[span])
	require.NoError(t, err)
	return out
}

// assertWellFormed checks the properties every answer of incomplete_ranges has: non-empty ranges
// inside [since, until), in time order, not overlapping, gaps before the one watermark range, which
// (when present) ends at until and starts at the watermark or at since.
func assertWellFormed(t *testing.T, got []incompleteRange, since, until, watermark time.Time) {
	t.Helper()
	for i, r := range got {
		assert.True(t, r.Since.Before(r.Until), "range %d is empty: %+v", i, r)
		assert.False(t, r.Since.Before(since), "range %d starts before since", i)
		assert.False(t, r.Until.After(until), "range %d ends after until", i)
		if i > 0 {
			assert.False(t, r.Since.Before(got[i-1].Until), "range %d overlaps the one before", i)
		}
		if r.Reason == "watermark" {
			assert.Equal(t, len(got)-1, i, "the watermark range is the last")
			assert.True(t, r.Until.Equal(until), "watermark range ends at %s", r.Until)
			assert.True(t, r.Since.Equal(watermark) || r.Since.Equal(since), "watermark range starts at %s", r.Since)
		} else {
			assert.Equal(t, "gap", r.Reason)
			assert.False(t, r.Until.After(watermark), "a gap lies before the watermark")
		}
	}
}

// TestLivenessIdleCollector: a collector that receives nothing still extends its span on its timer,
// and the watermark follows its last record less the lateness.
func TestLivenessIdleCollector(t *testing.T) {
	te := startExporter(t, nil, fastLiveness)
	require.Eventually(t, func() bool {
		s := te.spans(t, te.live.collector)
		return len(s) == 1 && s[0].Until.Sub(s[0].Since) > 1500*time.Millisecond
	}, 10*time.Second, 20*time.Millisecond, "the idle collector's span grows past its lateness")
	s := te.spans(t, te.live.collector)[0]
	// Other collectors' spans (none here) and the seeded history do not hold it back.
	assert.WithinDuration(t, s.Until.Add(-time.Second), te.watermark(t), 200*time.Millisecond)
	now := time.Now().Truncate(time.Microsecond) // Postgres' precision
	got, w := te.incomplete(t, now.Add(-time.Hour), now)
	assertWellFormed(t, got, now.Add(-time.Hour), now, w)
	require.NotEmpty(t, got)
	assert.Equal(t, "watermark", got[len(got)-1].Reason)
	for _, r := range got[:len(got)-1] {
		// The only gap: between the migration (the end of the seeded history) and the first record.
		assert.True(t, r.Until.Equal(s.Since), "gap %+v ends where the collector's span starts", r)
		assert.Less(t, r.Until.Sub(r.Since), 10*time.Second)
	}
}

// TestLivenessCollectorStopped: a collector that stops leaves a gap from its last record less the
// lateness to the first record of the collector that replaces it; the watermark is held back by a
// live collector only.
func TestLivenessCollectorStopped(t *testing.T) {
	sc := pgtest.NewSchema(t)
	first := startExporter(t, sc, fastLiveness)
	require.Eventually(t, func() bool {
		s := first.spans(t, first.live.collector)
		return len(s) == 1 && s[0].Until.Sub(s[0].Since) > 1500*time.Millisecond
	}, 10*time.Second, 20*time.Millisecond, "the first collector's span grows past its lateness")
	first.push(t, pt{metric: "before-stop", service: "web", at: time.Now().Add(-time.Second), value: 1})
	require.NoError(t, first.shutdown(context.Background()))
	stopped, installed := first.spans(t, first.live.collector)[0].Until, first.spans(t, first.live.collector)[0].Since
	time.Sleep(time.Second) // longer than stale_after: the pipeline was down

	second := startExporter(t, sc, fastLiveness)
	require.Eventually(t, func() bool { return len(second.spans(t, second.live.collector)) == 1 },
		10*time.Second, 20*time.Millisecond)
	restarted := second.spans(t, second.live.collector)[0].Since
	require.Eventually(t, func() bool { return second.watermark(t).After(restarted) },
		10*time.Second, 20*time.Millisecond, "the watermark follows the live collector, not the stopped one")

	since, until := stopped.Add(-time.Minute), time.Now().Truncate(time.Microsecond)
	got, w := second.incomplete(t, since, until)
	assertWellFormed(t, got, since, until, w)
	var gap *incompleteRange
	for i := range got {
		if got[i].Reason == "gap" && got[i].Until.Equal(restarted) {
			gap = &got[i]
		}
	}
	require.NotNil(t, gap, "a gap ends where the second collector started: %+v", got)
	assert.True(t, gap.Since.Equal(stopped.Add(-time.Second)), "the gap starts at the last record less the lateness: %+v", gap)

	// series: the minute holding the gap is incomplete.
	var complete bool
	var v float64
	require.NoError(t, second.pool.QueryRow(context.Background(), "SELECT value, complete FROM "+second.schema+
		".series('before-stop', now() - interval '10 minutes', now(), interval '1 minute') WHERE time = date_bin('1 minute', $1::timestamptz, timestamptz 'epoch')",
		gap.Since).Scan(&v, &complete))
	assert.False(t, complete)
	require.NoError(t, second.pool.QueryRow(context.Background(), "SELECT sum(value) FROM "+second.schema+
		".series('before-stop', now() - interval '10 minutes', now(), interval '1 minute')").Scan(&v))
	assert.Equal(t, 1.0, v, "what the stopped collector wrote is there")

	// The ingestion view shows both collectors (one live), the gaps (since the migration, and while
	// no collector ran) and the watermark.
	var live, stoppedN, gaps, installGaps, marks int
	rows, err := second.pool.Query(context.Background(), "SELECT kind, live, since, until FROM "+second.schema+".ingestion")
	require.NoError(t, err)
	for rows.Next() {
		var kind string
		var isLive bool
		var s, u time.Time
		require.NoError(t, rows.Scan(&kind, &isLive, &s, &u))
		switch {
		case kind == "collector" && isLive:
			live++
		case kind == "collector":
			stoppedN++
		case kind == "gap" && u.Equal(restarted):
			gaps++
		case kind == "gap" && u.Equal(installed):
			installGaps++
		case kind == "watermark":
			marks++
			assert.True(t, isLive)
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []int{1, 1, 1, 1, 1}, []int{live, stoppedN, gaps, installGaps, marks})
}

// TestSourcesRecorded: every resource pushed is a source, also one without data points (a
// heartbeat), and last_seen is written again only when it moved by more than source_resolution.
func TestSourcesRecorded(t *testing.T) {
	te := startExporter(t, nil, fastLiveness, func(c *Config) { c.Completeness.SourceResolution = time.Hour })
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute)
	te.push(t, pt{metric: "m", service: "busy", instance: "b-1", at: at, value: 1})
	heartbeat := pmetric.NewMetrics()
	res := heartbeat.ResourceMetrics().AppendEmpty().Resource().Attributes()
	res.PutStr("service.name", "idle")
	res.PutStr("service.instance.id", "i-\x00-1") // repaired, not refused
	require.NoError(t, te.pushMetrics(ctx, heartbeat))
	noInstance := pmetric.NewMetrics()
	noInstance.ResourceMetrics().AppendEmpty().Resource().Attributes().PutStr("service.name", "bare")
	require.NoError(t, te.pushMetrics(ctx, noInstance))
	huge := pmetric.NewMetrics()
	res = huge.ResourceMetrics().AppendEmpty().Resource().Attributes()
	res.PutStr("service.name", strings.Repeat("s", 1<<20)) // cut: the pair is a btree key
	res.PutStr("service.instance.id", strings.Repeat("i", 1<<20))
	require.NoError(t, te.pushMetrics(ctx, huge))

	type src struct{ Service, Instance string }
	read := func() map[src][2]time.Time {
		rows, err := te.pool.Query(ctx, "SELECT service, instance, first_seen, last_seen FROM "+te.schema+".sources")
		require.NoError(t, err)
		defer rows.Close()
		out := map[src][2]time.Time{}
		for rows.Next() {
			var s src
			var f, l time.Time
			require.NoError(t, rows.Scan(&s.Service, &s.Instance, &f, &l))
			out[s] = [2]time.Time{f, l}
		}
		require.NoError(t, rows.Err())
		return out
	}
	// A track heartbeat: the resource and one point of 0 of track.heartbeat (the collector's OTLP
	// receiver drops a request without points). The source is recorded; nothing is counted.
	beat := pmetric.NewMetrics()
	rm := beat.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "quiet")
	rm.Resource().Attributes().PutStr("service.instance.id", "q-1")
	sum := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	sum.SetName(conventions.Heartbeat)
	sum.SetEmptySum().SetIsMonotonic(true)
	sum.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sum.Sum().DataPoints().AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	require.NoError(t, te.pushMetrics(ctx, beat))
	want := []src{{"busy", "b-1"}, {"idle", "i-\uFFFD-1"}, {"bare", ""}, {strings.Repeat("s", 1024), strings.Repeat("i", 1024)}, {"quiet", "q-1"}}
	require.Eventually(t, func() bool { return len(read()) == len(want) }, 10*time.Second, 20*time.Millisecond)
	before := read()
	for _, s := range want {
		require.Contains(t, before, s)
		assert.False(t, before[s][1].Before(before[s][0]))
	}
	var heartbeats int
	require.NoError(t, te.pool.QueryRow(ctx, "SELECT count(*) FROM "+te.schema+".series WHERE metric = $1", conventions.Heartbeat).Scan(&heartbeats))
	assert.Zero(t, heartbeats, "a heartbeat is no series")
	metadatatest.AssertEqualExporterPgrollupPointsAccepted(t, te.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	// Seen again within source_resolution: no write.
	te.push(t, pt{metric: "m", service: "busy", instance: "b-1", at: at, value: 1})
	require.NoError(t, te.pushMetrics(ctx, heartbeat))
	time.Sleep(200 * time.Millisecond) // several liveness ticks
	assert.Equal(t, before, read())
}

// TestSeriesComplete: with collectors that stopped and others that took over later (their spans
// written as the exporter writes them), series marks incomplete the buckets that overlap a gap (from
// a stopped collector's last flush less its lateness to the next one's first flush), those past the
// watermark, and the current one; every other bucket is complete, also where nothing was counted (a
// stopped service reads 0, complete). Values are what was counted, complete or not. One gap, then
// three (series tests one gap and several in different ways).
func TestSeriesComplete(t *testing.T) {
	te := startExporter(t, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	var points []pt
	for m := 175; m >= 0; m -= 7 {
		points = append(points, pt{metric: "checkout", service: "web", at: now.Add(-time.Duration(m) * time.Minute), value: 1})
	}
	te.push(t, points...)
	// Spans before now, in minutes: a collector stops at each span's end, the next starts 10 minutes later.
	for _, spans := range [][][2]int{
		{{180, 120}, {110, 0}},
		{{180, 150}, {140, 100}, {95, 61}, {60, 0}},
	} {
		_, err := te.pool.Exec(ctx, `DELETE FROM `+te.schema+`.collector_spans WHERE collector NOT IN ('', $1)`, te.live.collector)
		require.NoError(t, err)
		_, err = te.pool.Exec(ctx, `UPDATE `+te.schema+`.collector_spans SET until = now() - interval '179 minutes' WHERE collector = ''`) // overlaps the first span
		require.NoError(t, err)
		var t0 time.Time
		for i, sp := range spans {
			require.NoError(t, te.pool.QueryRow(ctx, `INSERT INTO `+te.schema+`.collector_spans (collector, since, until, lateness, gap)
VALUES ($1, now() - make_interval(mins => $2), now() - make_interval(mins => $3), interval '10 seconds', interval '1 minute') RETURNING now()`,
				fmt.Sprint("c", i), sp[0], sp[1]).Scan(&t0))
		}
		type gap struct{ from, to time.Time }
		var gaps []gap
		for i := 1; i < len(spans); i++ {
			if from, to := t0.Add(-time.Duration(spans[i-1][1])*time.Minute-10*time.Second), t0.Add(-time.Duration(spans[i][0])*time.Minute); from.Before(to) {
				gaps = append(gaps, gap{from, to})
			}
		}
		inGap := func(from, to time.Time) bool {
			for _, g := range gaps {
				if from.Before(g.to) && to.After(g.from) {
					return true
				}
			}
			return false
		}
		for _, step := range []time.Duration{time.Minute, time.Hour} {
			rows, err := te.pool.Query(ctx, "SELECT s.time, s.value, s.complete, "+te.schema+".watermark(), now() FROM "+
				te.schema+".series('checkout', now() - interval '4 hours', now(), $1::interval) s", step.String())
			require.NoError(t, err)
			var zeros, counted, gapped int
			var last tzRow
			var sum float64
			var w, until time.Time
			_, err = pgx.ForEachRow(rows, []any{&last.At, &last.Value, &last.Complete, &w, &until}, func() error {
				end := last.At.Add(step)
				want := !end.After(w) && !end.After(until) && !inGap(last.At, end)
				assert.Equal(t, want, last.Complete, "bucket %s (step %s, watermark %s, %d gaps)", last.At, step, w, len(gaps))
				sum += last.Value
				switch {
				case last.Complete && last.Value == 0:
					zeros++
				case last.Complete:
					counted++
				case inGap(last.At, end):
					gapped++
				}
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, float64(len(points)), sum, "every count is there, complete or not")
			assert.False(t, last.Complete, "the current bucket is never complete")
			assert.Positive(t, gapped, "a bucket overlaps a gap")
			if step == time.Minute {
				assert.Positive(t, counted, "minutes with counts are complete")
				assert.Positive(t, zeros, "a minute without counts reads 0, complete")
			}
			assert.WithinDuration(t, until.Add(-15*time.Second), w, 5*time.Second, "the live exporter (lateness 15s) holds the watermark")
		}
	}
}
