package pgrollup

import (
	"context"
	"errors"
	"github.com/jackc/pgerrcode"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadatatest"
	"github.com/trackhq/track/internal/pgtest"
)

// pgProxy stands for a Postgres that is down until up is called: a loopback port where nothing
// listens (connections are refused), and then a TCP forwarder from that port to the real server.
type pgProxy struct {
	t      *testing.T
	addr   string // host:port of the proxy
	target string // host:port of the server
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &pgProxy{t: t, addr: ln.Addr().String(), target: target}
	require.NoError(t, ln.Close()) // down: the port refuses connections
	t.Cleanup(p.close)
	return p
}

// up starts forwarding.
func (p *pgProxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(s, c); s.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, s); c.Close() })
		}
	})
}

func (p *pgProxy) close() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// statusHost records the component status events reported through it (a componentstatus.Reporter).
type statusHost struct {
	mu     sync.Mutex
	events []componentstatus.Status
}

var _ componentstatus.Reporter = (*statusHost)(nil)

func (h *statusHost) GetExtensions() map[component.ID]component.Component { return nil }

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev.Status())
}

func (h *statusHost) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]componentstatus.Status(nil), h.events...)
}

// proxiedDSN returns dsn (a URL) pointed at addr.
func proxiedDSN(t *testing.T, dsn, addr string) (proxied, target string) {
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	target = u.Host
	u.Host = addr
	return u.String(), target
}

// TestStartWithoutPostgres starts the exporter, through the factory with its sending queue and
// retries, while Postgres is down: Start succeeds, requests are accepted into the queue, pushes
// fail retryably, and the component reports a recoverable error. Once Postgres answers it migrates,
// reports OK and writes every queued request exactly once.
func TestStartWithoutPostgres(t *testing.T) {
	sc := pgtest.NewSchema(t)
	ctx := context.Background()
	dsn, target := proxiedDSN(t, sc.ServerDSN, "127.0.0.1:1")
	proxy := newPGProxy(t, target)
	dsn, _ = proxiedDSN(t, dsn, proxy.addr)

	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(dsn)
	cfg.Schema = sc.Name
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.BackOffConfig.InitialInterval = 50 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 200 * time.Millisecond
	cfg.BackOffConfig.MaxElapsedTime = 0 // retry until Postgres answers, as examples/collector.yaml
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(ctx)) }()
	exp, err := NewFactory().CreateMetrics(ctx, metadatatest.NewSettings(tel), cfg)
	require.NoError(t, err)
	host := &statusHost{}
	began := time.Now()
	require.NoError(t, exp.Start(ctx, host), "Postgres being down does not fail Start")
	assert.Less(t, time.Since(began), firstConnectTimeout+time.Second)
	assert.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError}, host.statuses())

	at := hoursAgo(1)
	const requests = 20
	for i := range requests {
		md := request(pt{metric: "waited", service: "svc", at: at.Add(time.Duration(i) * time.Second), value: float64(i + 1), isInt: true})
		require.NoError(t, exp.ConsumeMetrics(ctx, md), "accepted into the queue while Postgres is down")
	}
	time.Sleep(300 * time.Millisecond) // a few retries fail
	assert.Zero(t, counter(t, tel, "items_committed"))

	proxy.up()
	pool := sc.Pool(t)
	te := &testExporter{pool: pool, rollupExporter: &rollupExporter{schema: sc.Name}}
	const want = requests * (requests + 1) / 2
	require.Eventually(t, func() bool {
		var n float64
		_ = pool.QueryRow(ctx, "SELECT coalesce(sum(value), 0) FROM "+sc.Name+".minutely WHERE metric = 'waited'").Scan(&n)
		return n == want
	}, 30*time.Second, 20*time.Millisecond, "every queued request is written once Postgres answers")
	require.NoError(t, exp.Shutdown(ctx))
	assert.Equal(t, float64(want), te.total(t, "daily", "waited"), "exactly once")
	metadatatest.AssertEqualExporterPgrollupItemsCommitted(t, tel, []metricdata.DataPoint[int64]{{Value: requests}}, metricdatatest.IgnoreTimestamp())
	assert.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError, componentstatus.StatusOK}, host.statuses(),
		"degraded while down (reported once), OK once connected")
}

// TestStartFailsOnlyOnWhatCanNeverWork: a DSN that does not parse fails Start; a server that
// refuses the credentials does not (the role may be created later), and its pushes fail
// retryably with the server's error.
func TestStartFailsOnlyOnWhatCanNeverWork(t *testing.T) {
	sc := pgtest.NewSchema(t)
	ctx := context.Background()
	start := func(dsn string) (*rollupExporter, error) {
		cfg := createDefaultConfig().(*Config)
		cfg.DSN = configopaque.String(dsn)
		cfg.Schema = sc.Name
		e, err := newExporter(cfg, metadatatest.NewSettings(componenttest.NewTelemetry()))
		require.NoError(t, err)
		return e, e.start(ctx, componenttest.NewNopHost())
	}
	_, err := start("postgres://u@127.0.0.1:notaport/db")
	require.ErrorContains(t, err, "parsing dsn")

	u, err := url.Parse(sc.ServerDSN)
	require.NoError(t, err)
	u.User = url.User("no_such_role_" + sc.Name)
	e, err := start(u.String())
	require.NoError(t, err, "an authentication failure does not fail Start")
	defer func() { require.NoError(t, e.shutdown(ctx)) }()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = e.pushMetrics(short, request(pt{metric: "m", service: "s", at: time.Now(), value: 1}))
	require.ErrorIs(t, err, ErrNotConnected, "a push waits for the connection while its context lasts, then fails")
	assert.False(t, consumererror.IsPermanent(err))
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	assert.True(t, pgerrcode.IsInvalidAuthorizationSpecification(pgErr.Code), "invalid authorization specification: %v", err)
	assert.True(t, misconfigured(err), "logged at error level")
}
