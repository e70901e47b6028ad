package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// e2eHashKey is the TRACK_SAMPLER_HASH_KEY the harness gives every collector.
const e2eHashKey = "e2e-test-hash-key-0123456789"

// hashedUser is what the sampler stores for a user id: the hex HMAC-SHA256 under the hash key,
// truncated to the default 32 characters (processor/sampler, hashing).
func hashedUser(id string) string {
	m := hmac.New(sha256.New, []byte(e2eHashKey))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// browserTools returns the Chromium binary and checks that node, the built client and
// playwright-core are there. A missing piece fails the test: it never skips.
func browserTools(t *testing.T) (chromiumBin string) {
	t.Helper()
	_, err := exec.LookPath("node")
	require.NoError(t, err, "the browser test needs node on PATH")
	chromiumBin = os.Getenv("TRACK_CHROMIUM")
	if chromiumBin == "" {
		chromiumBin = "/usr/bin/chromium"
	}
	_, err = os.Stat(chromiumBin)
	require.NoError(t, err, "the browser test needs Chromium: run `make chromium` (make test does it) or set TRACK_CHROMIUM")
	for _, p := range []string{"web/dist/track.js", "web/node_modules/playwright-core/package.json"} {
		_, err := os.Stat(filepath.Join(repoRoot, p))
		require.NoError(t, err, "the browser test needs %s: run `make web` (make test does it)", p)
	}
	return chromiumBin
}

// pageServer runs the web-signup page (examples/web-signup/page) on two loopback origins, the
// first one allowed by the collector and the other not, sending to endpoint.
func pageServer(t *testing.T, endpoint string) (allowed, other string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "page")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/web-signup/page")
	build.Dir = repoRoot
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the page server: %s", out)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-also", "127.0.0.1:0", "-endpoint", "http://"+endpoint,
		"-client", filepath.Join(repoRoot, "web", "dist", "track.js"))
	cmd.SysProcAttr = dieWithTest()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	sc := bufio.NewScanner(stdout)
	var origins []string
	for len(origins) < 2 && sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "page: serving "); ok {
			origins = append(origins, strings.TrimSuffix(u, "/signup"))
		}
	}
	require.Len(t, origins, 2, "the page server did not report its two addresses")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return origins[0], origins[1]
}

// browserReport is one JSON line of web/test/signup.mjs.
type browserReport struct {
	Wait     string `json:"wait"`
	Done     bool   `json:"done"`
	Scenario string `json:"scenario"`
	Visitor  string `json:"visitor"`
	Receipt  string `json:"receipt"`
	Path     string `json:"path"`
	Stats    struct {
		Queued, Sent, Dropped, Refused, Retries int
	} `json:"stats"`
	Before     struct{ Queued, Sent, Refused int } `json:"before"`
	Down       struct{ Queued, Sent, Retries int }
	Up         struct{ Queued, Sent, Dropped int }
	PageErrors []string `json:"pageErrors"`
	Status     int      `json:"status"`
	Text       string   `json:"text"`
	Bytes      int      `json:"bytes"`
}

// runBrowser runs web/test/signup.mjs and answers its requests to stop and start the collector.
func runBrowser(t *testing.T, c *collector, chromiumBin, allowed, other string) map[string]browserReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "test/signup.mjs")
	cmd.Dir = filepath.Join(repoRoot, "web")
	cmd.SysProcAttr = dieWithTest()
	cmd.Env = append(os.Environ(), "PAGE_URL="+allowed, "OTHER_URL="+other, "CHROMIUM="+chromiumBin)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return stderr.Write(p)
	})
	require.NoError(t, cmd.Start())
	reports := map[string]browserReport{}
	done := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r browserReport
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %q", sc.Text())
		switch {
		case r.Wait == "collector-down":
			c.stop()
			t.Log("collector stopped")
		case r.Wait == "collector-up":
			c.start()
			t.Log("collector started again")
		case r.Done:
			done = true
		case r.Scenario != "":
			t.Logf("browser: %s", sc.Text())
			reports[r.Scenario] = r
		}
		if r.Wait != "" {
			_, err := io.WriteString(stdin, "ok\n")
			require.NoError(t, err)
		}
	}
	werr := cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, werr, "web/test/signup.mjs failed:\n%s", stderr.String())
	require.True(t, done, "web/test/signup.mjs ended early:\n%s", stderr.String())
	return reports
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// storedWebEvent is one row of <schema>.events, reduced to what the browser test checks.
type storedWebEvent struct {
	name, page, user, country, region, service, body string
	attrs                                            map[string]any
	adjusted                                         float64
}

// key is the event as the expectations below spell it: name page [click.target] [scroll.depth].
func (e storedWebEvent) key() string {
	k := e.name + " " + e.page
	for _, a := range []string{"click.target", "scroll.depth"} {
		if v, ok := e.attrs[a]; ok {
			k += fmt.Sprintf(" %s=%v", a, v)
		}
	}
	return k
}

// 12. The browser client in headless Chromium against the collector's browser endpoint: the page on
// one origin, the collector on another. Every event lands exactly once in track.events with the
// right columns (and the stack trace), the user id hashed, the email in a clicked button's text
// never stored; a disallowed origin is refused by CORS, an oversized batch with a clear status,
// and events queued while the collector is down arrive once it is back.
func TestBrowserClient(t *testing.T) {
	chromiumBin := browserTools(t)
	d := sharedDB(t)
	c := newCollector(t, "web", collectorOptions{dsn: d.dsn, schema: d.schema})
	allowed, other := pageServer(t, c.Web)
	c.Opts.WebOrigin = allowed
	c.start()

	t.Run("preflight", func(t *testing.T) {
		for _, tc := range []struct {
			origin string
			allow  bool
		}{{allowed, true}, {other, false}} {
			req, err := http.NewRequest(http.MethodOptions, "http://"+c.Web+"/v1/logs", nil)
			require.NoError(t, err)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			if tc.allow {
				assert.Equal(t, tc.origin, resp.Header.Get("Access-Control-Allow-Origin"), "preflight from %s", tc.origin)
			} else {
				assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "preflight from %s", tc.origin)
			}
		}
		// Logs only: the browser endpoint has no metrics or traces route.
		for _, p := range []string{"/v1/metrics", "/v1/traces"} {
			resp, err := http.Post("http://"+c.Web+p, "application/json", strings.NewReader("{}"))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, p)
		}
	})

	t.Run("hostile", func(t *testing.T) {
		// Anyone can POST to the endpoint: filter/web drops a service name outside TRACK_WEB_SERVICES
		// and a sampling.adjusted_count above 100 (checked below: neither is stored nor counted).
		for _, body := range []string{
			`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"login-service"}}]},` +
				`"scopeLogs":[{"logRecords":[{"eventName":"hostile_service"}]}]}]}`,
			`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web-signup"}}]},` +
				`"scopeLogs":[{"logRecords":[{"eventName":"hostile_weight","attributes":[{"key":"sampling.adjusted_count","value":{"doubleValue":1e6}}]}]}]}]}`,
		} {
			req, err := http.NewRequest(http.MethodPost, "http://"+c.Web+"/v1/logs", strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", allowed)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		}
	})

	reports := runBrowser(t, c, chromiumBin, allowed, other)
	for _, s := range []string{"form", "hide", "cors", "oversized", "outage"} {
		require.Contains(t, reports, s, "scenario %s did not report", s)
	}
	form, hide, cors, big, outage := reports["form"], reports["hide"], reports["cors"], reports["oversized"], reports["outage"]

	// What the page did, as the browser saw it.
	assert.Contains(t, form.Receipt, "jane.doe@example.com", "the clicked button's text holds the email")
	assert.Equal(t, "/signup/done", form.Path)
	require.Len(t, form.PageErrors, 1, "the declined card throws once in the page")
	assert.Contains(t, form.PageErrors[0], "card declined")
	assert.Zero(t, form.Stats.Dropped+form.Stats.Refused, "form: nothing dropped or refused")
	assert.Equal(t, 2, hide.Before.Queued, "hide: two events queued before the page was left")
	assert.Zero(t, hide.Before.Sent, "hide: nothing sent before the page was left")
	assert.Equal(t, 4, hide.Before.Refused, "hide: four invalid event names refused and counted")
	assert.Zero(t, cors.Stats.Sent, "cors: the browser let nothing through")
	assert.GreaterOrEqual(t, cors.Stats.Retries, 2, "cors: the client retries")
	assert.Equal(t, 5, cors.Stats.Queued, "cors: the queue holds its bound (?queue=5)")
	assert.Equal(t, 4, cors.Stats.Dropped, "cors: the events beyond the bound are dropped and counted")
	assert.Equal(t, http.StatusBadRequest, big.Status, "oversized: %d bytes", big.Bytes)
	assert.Contains(t, big.Text, "request body too large")
	assert.Zero(t, outage.Down.Sent, "outage: nothing sent while the collector was down")
	assert.GreaterOrEqual(t, outage.Down.Retries, 1)
	assert.Equal(t, 9, outage.Up.Sent, "outage: the queued events are sent once the collector is back")
	assert.Empty(t, outage.PageErrors, "outage: the page keeps working")

	// What landed in Postgres: each visitor's events exactly once.
	want := map[string][]string{
		form.Visitor: {
			"page_view /signup", "signup_start /signup",
			"scroll /signup scroll.depth=25", "scroll /signup scroll.depth=50",
			"scroll /signup scroll.depth=75", "scroll /signup scroll.depth=100",
			"click /signup click.target=next",
			"page_view /signup/profile", "signup_profile /signup/profile", "click /signup/profile click.target=next",
			"page_view /signup/payment", "signup_payment /signup/payment",
			"click /signup/payment click.target=pay", "error /signup/payment", "click /signup/payment click.target=pay",
			"page_view /signup/done", "signup_complete /signup/done", "click /signup/done click.target=send-receipt",
		},
		hide.Visitor: {"page_view /signup", "signup_start /signup"},
		// Checking the box scrolls it (below the terms) into view.
		outage.Visitor: {"page_view /signup", "signup_start /signup",
			"scroll /signup scroll.depth=25", "scroll /signup scroll.depth=50",
			"scroll /signup scroll.depth=75", "scroll /signup scroll.depth=100",
			"click /signup click.target=next", "page_view /signup/profile", "signup_profile /signup/profile"},
	}
	var total int64
	for _, w := range want {
		total += int64(len(w))
	}
	conn := d.connect(t)
	waitForEvents(t, d, conn, total)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, `SELECT name, coalesce(page, ''), coalesce(user_id, ''), coalesce(country, ''),
		coalesce(region, ''), service, coalesce(body, ''), attributes, adjusted_count FROM `+d.schema+`.events`)
	require.NoError(t, err)
	got := map[string][]string{}
	var errs []storedWebEvent
	var all []string
	for rows.Next() {
		var e storedWebEvent
		var raw []byte
		require.NoError(t, rows.Scan(&e.name, &e.page, &e.user, &e.country, &e.region, &e.service, &e.body, &raw, &e.adjusted))
		require.NoError(t, json.Unmarshal(raw, &e.attrs))
		got[e.user] = append(got[e.user], e.key())
		all = append(all, string(raw), e.body, e.user)
		if e.name == "error" {
			errs = append(errs, e)
		}
		assert.Equal(t, "web-signup", e.service)
		assert.Equal(t, "DE", e.country, "country from the browser's locale (de-DE)")
		assert.Empty(t, e.region)
		assert.Equal(t, 1.0, e.adjusted)
	}
	require.NoError(t, rows.Err())
	for visitor, w := range want {
		h := hashedUser(visitor)
		assert.NotContains(t, got, visitor, "a raw user id was stored")
		g := got[h]
		slices.Sort(g)
		slices.Sort(w)
		assert.Equal(t, w, g, "the events of visitor %s (stored as %s)", visitor, h)
	}
	assert.NotContains(t, got, hashedUser(cors.Visitor), "events from a disallowed origin were stored")
	assert.Len(t, got, len(want), "users in track.events")

	stored := strings.Join(all, "\n")
	for _, secret := range []string{"jane.doe@example.com", "Jane Doe", "4242 4242 4242 4242", "4000 0000 0000 0002",
		form.Visitor, hide.Visitor, outage.Visitor} {
		assert.NotContains(t, stored, secret)
	}

	require.Len(t, errs, 1, "one error event")
	e := errs[0]
	assert.Equal(t, "Error", e.attrs["exception.type"])
	assert.Contains(t, e.attrs["exception.message"], "card declined")
	assert.Equal(t, e.attrs["exception.message"], e.body, "the message is also the body")
	stack, _ := e.attrs["exception.stacktrace"].(string)
	assert.Contains(t, stack, "chargeCard", "the stack trace names the function that threw")
	assert.Contains(t, stack, "/static/app.js", "the stack trace names the script")

	// The rollups count the same events, and nothing of what filter/web dropped.
	for name, n := range map[string]int64{"event.page_view": 7, "event.click": 6, "event.scroll": 8, "event.error": 1,
		"event.hostile_service": 0, "event.hostile_weight": 0} {
		v, err := d.sum(ctx, name, "")
		require.NoError(t, err)
		assert.Equal(t, n, v, name)
	}
}
