// The browser half of e2e/web_test.go: it drives the web-signup page (examples/web-signup/page) in
// headless Debian Chromium through playwright-core, and prints one JSON line per scenario with what
// it did, for the Go test to check against Postgres. When it needs the collector stopped or
// started, it prints {"wait": "..."} and reads one line from stdin once the Go test has done it.
//
// Environment: PAGE_URL (the allowed origin), OTHER_URL (an origin the collector does not allow),
// CHROMIUM (the browser binary).
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const PAGE = process.env.PAGE_URL;
const OTHER = process.env.OTHER_URL;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const waitFor = async (what) => {
  out({ wait: what });
  const { done } = await lines.next();
  if (done) throw new Error(`stdin closed while waiting for ${what}`);
};

// The flags the machine notes give for Chromium here: no sandbox as root, and no background
// networking, whose connections a closed network refuses. Playwright gives it a fresh profile.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  timeout: 60000,
});

const stats = (page) => page.evaluate(() => window.track.stats());
const until = async (page, pred, what, ms = 30000) => {
  const end = Date.now() + ms;
  for (;;) {
    const s = await stats(page);
    if (pred(s)) return s;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms} ms; stats ${JSON.stringify(s)}`);
    await page.waitForTimeout(100);
  }
};
const newPage = async () => {
  // de-DE: the client sends the locale's region as a coarse country hint (location: "locale").
  const ctx = await browser.newContext({ locale: "de-DE" });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e.message)));
  return { ctx, page, pageErrors };
};
const scrollToBottom = async (page) => {
  for (let i = 0; i < 40; i++) {
    const atEnd = await page.evaluate(() => {
      scrollBy(0, 200);
      return innerHeight + scrollY >= document.documentElement.scrollHeight - 1;
    });
    await page.waitForTimeout(20);
    if (atEnd) break;
  }
};

try {
  // 1. The whole form: page view, scroll to the bottom, marked clicks, SPA navigation through the
  // History API, a thrown error, and a click on a button whose text holds the email address.
  {
    const { ctx, page, pageErrors } = await newPage();
    await page.goto(`${PAGE}/signup?flush=300`);
    await page.locator("#start").waitFor();
    await scrollToBottom(page);
    await page.check("#accept");
    await page.click("#start-next");
    await page.locator("#profile").waitFor();
    await page.fill("#name", "Jane Doe");
    await page.fill("#email", "jane.doe@example.com");
    await page.click("#profile-next");
    await page.locator("#payment").waitFor();
    await page.fill("#card", "4000 0000 0000 0002");
    await page.click("#pay"); // throws in the page: reported as an error event
    await page.locator("#payment-error").waitFor();
    await page.fill("#card", "4242 4242 4242 4242");
    await page.click("#pay");
    await page.locator("#done").waitFor();
    const receipt = await page.textContent("#send-receipt");
    await page.click("#send-receipt");
    await page.locator("#receipt-sent").waitFor();
    const s = await until(page, (s) => s.queued === 0 && s.sent >= 18, "the form's events sent");
    out({ scenario: "form", visitor: await page.evaluate(() => window.signupVisitor), path: new URL(page.url()).pathname,
      receipt, stats: s, pageErrors });
    await ctx.close();
  }

  // 2. Page hide: with a flush interval of an hour, the page view and signup_start wait in the queue
  // until the page is left; then pagehide sends them (fetch with keepalive). Before that, from the
  // same page (the allowed origin): an oversized batch, 100 000 bytes, refused with a clear status.
  {
    const { ctx, page } = await newPage();
    await page.goto(`${PAGE}/signup?flush=3600000`);
    await page.locator("#start").waitFor();
    const res = await page.evaluate(async () => {
      const cfg = window.SIGNUP_CONFIG;
      const big = "x".repeat(100000);
      const body = JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: "web-signup" } }] },
        scopeLogs: [{ logRecords: [{ eventName: "oversized", body: { stringValue: big } }] }] }] });
      const r = await fetch(cfg.endpoint + "/v1/logs", { method: "POST", headers: { "Content-Type": "application/json" }, body });
      return { status: r.status, text: await r.text(), bytes: body.length };
    });
    out({ scenario: "oversized", ...res });
    // Invalid calls never throw into the page; invalid names are refused and counted.
    const misuse = await page.evaluate(() => {
      try {
        window.track.event();
        window.track.event("1st-not-a-letter");
        window.track.event("has space", { a: 1 });
        window.track.event("x".repeat(300));
        return "";
      } catch (e) {
        return String(e);
      }
    });
    if (misuse) throw new Error(`the client threw into the page: ${misuse}`);
    const before = await until(page, (s) => s.queued === 2 && s.refused === 4, "two events queued, four refused");
    const visitor = await page.evaluate(() => window.signupVisitor);
    await page.goto("about:blank");
    // The keepalive request outlives the page, not the browser context: give it time before closing.
    await page.waitForTimeout(2000);
    out({ scenario: "hide", visitor, before });
    await ctx.close();
  }

  // 3. An origin the collector does not allow: the browser refuses every send (CORS), the page works
  // on, and the client keeps the events queued and retries, within its bound (?queue=5: of the 9
  // events, the 4 newest are dropped and counted).
  {
    const { ctx, page } = await newPage();
    const refused = [];
    page.on("console", (m) => {
      if (/CORS|Access-Control-Allow-Origin/i.test(m.text())) refused.push(m.text());
    });
    await page.goto(`${OTHER}/signup?flush=100&backoff=1000&queue=5`);
    await page.locator("#start").waitFor();
    await page.check("#accept");
    await page.click("#start-next");
    await page.locator("#profile").waitFor();
    const s = await until(page, (s) => s.retries >= 2 && s.queued + s.dropped === 9 && s.dropped === 4,
      "retries from the disallowed origin, 5 events kept and 4 dropped");
    out({ scenario: "cors", visitor: await page.evaluate(() => window.signupVisitor), stats: s, consoleRefusals: refused.length,
      corsError: refused[0] || "" });
    await ctx.close();
  }

  // 4. The collector is down: the page keeps working, the client queues and retries, and the events
  // arrive once the collector is back.
  {
    await waitFor("collector-down");
    const { ctx, page, pageErrors } = await newPage();
    await page.goto(`${PAGE}/signup?flush=100&backoff=1000`);
    await page.locator("#start").waitFor();
    await page.check("#accept"); // scrolls the checkbox (below the terms) into view: scroll 25..100
    await page.click("#start-next");
    await page.locator("#profile").waitFor();
    const down = await until(page, (s) => s.retries >= 1 && s.queued === 9, "events queued while the collector is down");
    await waitFor("collector-up");
    const up = await until(page, (s) => s.queued === 0 && s.sent === 9, "queued events sent after the collector is back", 60000);
    out({ scenario: "outage", visitor: await page.evaluate(() => window.signupVisitor), down, up, pageErrors });
    await ctx.close();
  }
} finally {
  await browser.close();
}
out({ done: true });
process.exit(0);
