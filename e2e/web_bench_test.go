package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

const (
	webEventsPerReq = 100 // the browser client's default maxBatch
	webWorkers      = 8   // concurrent "pages"
	webBenchPrefix  = "webbench_"
)

// webBody is one request as web/src/track.ts builds it: OTLP/HTTP JSON, webEventsPerReq events of
// webEventNames names with url.path, user.id, a country hint and a click target, all stamped now.
func webBody(worker, seq int, now time.Time) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web-bench"}},` +
		`{"key":"telemetry.sdk.name","value":{"stringValue":"track-web"}}]},"scopeLogs":[{"scope":{"name":"track-web","version":"0.1.0"},"logRecords":[`)
	ns := now.UnixNano()
	for i := range webEventsPerReq {
		if i > 0 {
			b.WriteByte(',')
		}
		t := strconv.FormatInt(ns+int64(i), 10)
		fmt.Fprintf(&b, `{"timeUnixNano":"%s","observedTimeUnixNano":"%s","severityNumber":9,"severityText":"INFO",`+
			`"eventName":"%s%d","attributes":[{"key":"url.path","value":{"stringValue":"/shop/%d"}},`+
			`{"key":"click.target","value":{"stringValue":"button-%d"}},{"key":"geo.country.iso_code","value":{"stringValue":"DE"}},`+
			`{"key":"user.id","value":{"stringValue":"visitor-%d-%d"}}]}`,
			t, t, webBenchPrefix, i%5, i%20, i%7, worker, (seq*webEventsPerReq+i)%2000)
	}
	b.WriteString(`]}]}]}`)
	return b.Bytes()
}

// sendWebLoad posts webBody requests from webWorkers clients to url for d, with the page's Origin,
// retrying a refused request as the client would, and returns the events acknowledged.
func sendWebLoad(b *testing.B, url, origin string, d time.Duration) int64 {
	var acked atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failure error
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: webWorkers}}
	defer client.CloseIdleConnections()
	for w := range webWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				mu.Lock()
				defer mu.Unlock()
				failure = err
			}
			for seq := 0; time.Now().Before(deadline); seq++ {
				body := webBody(w, seq, time.Now())
				for attempt := 0; ; attempt++ {
					req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					if err != nil {
						fail(err)
						return
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Origin", origin)
					resp, err := client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							acked.Add(webEventsPerReq)
							break
						}
						if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
							fail(fmt.Errorf("status %d", resp.StatusCode))
							return
						}
					}
					if attempt == 100 {
						fail(fmt.Errorf("request never accepted: %v", err))
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(b, failure)
	return acked.Load()
}

// BenchmarkBrowserEndpointPostgres measures the events per second the browser endpoint (otlp/web →
// memory_limiter → filter/web → sampler → pgrollup on examples/collector.yaml) stores into Postgres,
// from the first request until track.events holds every acknowledged event, beside the same JSON
// load sent to the services' OTLP/HTTP endpoint (the logs pipeline) in the same run.
func BenchmarkBrowserEndpointPostgres(b *testing.B) {
	for _, tc := range []struct {
		name string
		url  func(c *collector) string
	}{
		{"web", func(c *collector) string { return "http://" + c.Web + "/v1/logs" }},
		{"services-http", func(c *collector) string { return "http://" + c.HTTP + "/v1/logs" }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sc := sharedDB(b)
			const origin = "http://127.0.0.1:8080"
			c := newCollector(b, "bench-web", collectorOptions{dsn: sc.dsn, schema: sc.schema, webOrigin: origin})
			c.start()
			start := time.Now()
			acked := sendWebLoad(b, tc.url(c), origin, benchDuration())
			sentFor := time.Since(start)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			conn, err := pgx.Connect(ctx, sc.dsn)
			require.NoError(b, err)
			defer conn.Close(context.Background())
			var rows int64
			for {
				require.NoError(b, conn.QueryRow(ctx, "SELECT count(*) FROM "+sc.schema+".events WHERE starts_with(name, $1)", webBenchPrefix).Scan(&rows))
				if rows >= acked {
					break
				}
				require.NoError(b, ctx.Err(), "%d of %d events stored", rows, acked)
				time.Sleep(100 * time.Millisecond)
			}
			stored := time.Since(start)
			require.Equal(b, acked, rows, "rows in %s.events", sc.schema)
			var hashed bool
			require.NoError(b, conn.QueryRow(ctx, "SELECT bool_and(user_id NOT LIKE 'visitor-%') FROM "+sc.schema+".events").Scan(&hashed))
			require.True(b, hashed, "user ids are hashed")
			b.ReportMetric(float64(acked)/stored.Seconds(), "events/s")
			b.ReportMetric(float64(acked)/sentFor.Seconds(), "acked-events/s")
			b.ReportMetric(peakRSS(c.pid()), "peak-RSS-MiB")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: %d events acknowledged in %s, all stored after %s", strings.TrimPrefix(b.Name(), "BenchmarkBrowserEndpointPostgres/"),
				acked, sentFor, stored)
		})
	}
}
