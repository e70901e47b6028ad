package pgrollup

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadatatest"
	"github.com/trackhq/track/internal/pgtest"
)

// snapStorage is a storage extension over the contrib in-memory test client whose state can be
// copied at any moment: the copy is what a SIGKILLed collector would find in its queue file.
type snapStorage struct {
	component.StartFunc
	component.ShutdownFunc
	client *storagetest.TestClient
}

func newSnapStorage(state map[string][]byte) *snapStorage {
	c := storagetest.NewInMemoryClient(component.KindExtension, storagetest.NewStorageID("queue"), "")
	for k, v := range state {
		_ = c.Set(context.Background(), k, v)
	}
	return &snapStorage{client: c}
}

func (s *snapStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return s.client, nil
}

// snapshot copies the stored state.
func (s *snapStorage) snapshot(t *testing.T) map[string][]byte {
	state := map[string][]byte{}
	require.NoError(t, s.client.Walk(context.Background(), func(k string, v []byte) ([]*storage.Operation, error) {
		state[k] = append([]byte(nil), v...)
		return nil, nil
	}))
	return state
}

type storageHost map[component.ID]component.Component

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h }

// counter sums the data points of one of the exporter's counters. A counter that was never
// recorded reads as 0, but only if metadata.yaml defines it (see knownMetric): a misspelt or
// renamed counter fails the test instead of reading as 0.
func counter(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric("otelcol_exporter_pgrollup_" + name)
	if err != nil {
		knownMetric(t, name)
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		n += dp.Value
	}
	return n
}

// TestPersistentQueueReplayAfterCrash drives the exporter through exporterhelper with a persistent
// sending queue. It takes a copy of the queue's storage while requests are in flight (what a
// SIGKILL would leave behind), lets the first exporter commit everything, then starts a second
// exporter on the copy: the queue replays the requests, and none counts twice.
func TestPersistentQueueReplayAfterCrash(t *testing.T) {
	sc := pgtest.NewSchema(t)
	ctx := context.Background()
	storeID := storagetest.NewStorageID("queue")
	newExp := func(store *snapStorage) (exporter.Metrics, *componenttest.Telemetry) {
		cfg := createDefaultConfig().(*Config)
		cfg.DSN = configopaque.String(sc.ServerDSN)
		cfg.Schema = sc.Name
		cfg.FlushInterval = 10 * time.Millisecond
		q := cfg.QueueConfig.Get()
		q.StorageID = &storeID
		q.NumConsumers = 2
		require.NoError(t, cfg.Validate())
		tel := componenttest.NewTelemetry()
		exp, err := NewFactory().CreateMetrics(ctx, metadatatest.NewSettings(tel), cfg)
		require.NoError(t, err)
		require.NoError(t, exp.Start(ctx, storageHost{storeID: store}))
		return exp, tel
	}

	store := newSnapStorage(nil)
	a, telA := newExp(store)
	pool := sc.Pool(t)
	// Block the write path: the first flushes wait on this lock with their requests in flight.
	blocker, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = blocker.Exec(ctx, "LOCK TABLE "+sc.Name+".item_keys IN EXCLUSIVE MODE")
	require.NoError(t, err)

	at := hoursAgo(1)
	const requests = 10
	for i := range requests {
		md := request(pt{metric: "queued", service: "svc", at: at.Add(time.Duration(i) * time.Second), value: float64(i + 1), isInt: true})
		require.NoError(t, a.ConsumeMetrics(ctx, md), "accepted once written to the queue's storage")
	}
	require.Eventually(t, func() bool {
		var waiting int
		_ = pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%item_keys%'").Scan(&waiting)
		return waiting > 0
	}, 10*time.Second, 10*time.Millisecond)
	crashImage := store.snapshot(t)

	require.NoError(t, blocker.Rollback(ctx))
	const want = requests * (requests + 1) / 2
	te := &testExporter{pool: pool, rollupExporter: &rollupExporter{schema: sc.Name}}
	require.Eventually(t, func() bool { return te.total(t, "minutely", "queued") == want }, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, a.Shutdown(ctx))
	require.NoError(t, telA.Shutdown(ctx))

	b, telB := newExp(newSnapStorage(crashImage))
	require.Eventually(t, func() bool { return counter(t, telB, "items_duplicate") >= 1 }, 20*time.Second, 20*time.Millisecond,
		"the second exporter replays what the first had in flight")
	require.Eventually(t, func() bool {
		return counter(t, telB, "items_duplicate")+counter(t, telB, "items_committed") == requests
	}, 20*time.Second, 20*time.Millisecond, "the second exporter replays every request of the crash image")
	require.NoError(t, b.Shutdown(ctx))
	assert.Equal(t, int64(0), counter(t, telB, "items_committed"), "nothing new to count")
	assert.Equal(t, float64(want), te.total(t, "minutely", "queued"), "exactly once across the crash")
	assert.Equal(t, float64(want), te.total(t, "daily", "queued"))
	require.NoError(t, telB.Shutdown(ctx))
}

// knownMetric fails the test unless name is one of the telemetry metrics that mdatagen generated
// from metadata.yaml (it documents each in documentation.md).
func knownMetric(t *testing.T, name string) {
	t.Helper()
	doc, err := os.ReadFile("documentation.md")
	require.NoError(t, err)
	require.Contains(t, string(doc), "\n### otelcol_exporter_pgrollup_"+name+"\n", "a metric metadata.yaml defines")
}
