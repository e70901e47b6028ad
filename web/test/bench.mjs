// The cost to the page of one event, in headless Chromium: track.event (dist/track.js) beside the
// OpenTelemetry JS logs SDK build for the same job (dist/otel-logs.js), in the same page and run.
// Sends fail at once (nothing listens on the endpoint): this measures the call that runs in the
// page's own code, which is all a click or a scroll handler pays. The median of ROUNDS rounds of
// EVENTS events each is reported.
//
//   make web chromium && cd web && node test/bench.mjs     (CHROMIUM, EVENTS and ROUNDS override)
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";

const dist = (f) => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));
const N = Number(process.env.EVENTS || 800); // per round: under both queues' bounds (1000)
const ROUNDS = Number(process.env.ROUNDS || 25);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  await page.setContent("<!doctype html><title>bench</title><body></body>");
  await page.addScriptTag({ path: dist("track.js") });
  await page.addScriptTag({ path: dist("otel-logs.js") });
  const res = await page.evaluate(async ({ N, ROUNDS }) => {
    const ep = "http://127.0.0.1:9"; // nothing listens: a send fails at once
    window.track.init({ endpoint: ep, service: "web-bench", user: "u-1", flushInterval: 36e5, maxQueue: 1e5, maxBatch: 1000,
      auto: { pageViews: false, clicks: false, scroll: false, errors: false } });
    window.otelTrack.init({ endpoint: ep, service: "web-bench", user: "u-1" });
    const props = { "click.target": "buy", "url.path": "/shop/cart", step: 3 };
    const time = (f) => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) f(i % 2 ? "click" : "checkout_step", props);
      return ((performance.now() - t0) * 1000) / N; // µs per event
    };
    const out = { track: [], otel: [] };
    for (let r = 0; r < ROUNDS; r++) {
      out.track.push(time(window.track.event));
      out.otel.push(time(window.otelTrack.event));
      // Let the OTel SDK's batch processor drain its buffer (its failed exports), so that every
      // round measures events accepted into a queue, never the cheaper path of a full queue.
      await new Promise((r) => setTimeout(r, 100));
    }
    return out;
  }, { N, ROUNDS });
  const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  console.log(JSON.stringify({ events: N, rounds: ROUNDS, us_per_event: { track: med(res.track), otel: med(res.otel) },
    ratio_otel_to_track: med(res.otel) / med(res.track), raw: res }));
} finally {
  await browser.close();
}
