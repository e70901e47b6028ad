// track's browser client: product events from the page to the collector's browser endpoint, as
// OTLP/HTTP JSON log records with the Go library's attribute keys, so that they land in
// track.events with the same columns as the events of Go services.
//
// It batches, retries with exponential backoff, keeps a bounded queue, flushes when the page is
// hidden, never throws into the page, and does its work in event handlers and timers only.

import {
  capture, guard, localeCountry, path, validName,
  KEY_COUNTRY, KEY_PAGE, KEY_REGION, KEY_USER,
  type Attrs, type Auto, type Value,
} from "./capture";

export type { Attrs, Auto, Value };

/** Options of init. Only endpoint and service are required. */
export interface Options {
  /** The collector's browser endpoint, e.g. "https://events.example.com" ("/v1/logs" is appended unless present). */
  endpoint: string;
  /** service.name of the events, e.g. "web-signup". */
  service: string;
  /** The signed-in user's id, sent as user.id (the collector replaces it by a keyed hash). */
  user?: string;
  /**
   * The share of users whose events are sent, in [0.01, 1] (default 1). The decision is made per
   * user (per page load before a user is known), and kept events carry sampling.adjusted_count =
   * 1/sampleRate so that counts stay unbiased. Invalid values fall back to 1.
   */
  sampleRate?: number;
  /** Country (ISO 3166-1 alpha-2) and region (ISO 3166-2 subdivision) the page already knows, e.g. from its server. */
  country?: string;
  region?: string;
  /** "locale": send the region subtag of the browser's language as the country when country is not given (a coarse hint). */
  location?: "locale";
  /** Automatic events; all are on by default. */
  auto?: Auto;
  /** Milliseconds between sends while events are queued (default 5000). */
  flushInterval?: number;
  /** Events per request (default 100). */
  maxBatch?: number;
  /** Events kept while the endpoint cannot be reached; newer events beyond it are dropped and counted (default 1000). */
  maxQueue?: number;
  /** The longest wait between retries, in milliseconds (default 60000); waits start at 1 s and double. */
  maxBackoff?: number;
}

/** Stats counts what happened to the events since init. */
export interface Stats {
  /** Events waiting to be sent. */
  queued: number;
  /** Events the endpoint accepted. */
  sent: number;
  /** Events dropped because the queue was full. */
  dropped: number;
  /** Events the endpoint refused for good (a 4xx answer other than 408 and 429), or invalid names. */
  refused: number;
  /** Requests that failed and were retried. */
  retries: number;
}

/** The largest request body, in bytes of JSON: under fetch's 64 KiB keepalive quota and the endpoint's limit. */
const MAX_BYTES = 60000;
const VERSION = "0.1.0";

interface State {
  url: string;
  head: string;
  attrs: Attrs;
  adjusted: number;
  rate: number;
  keep: boolean;
  flushMs: number;
  maxBatch: number;
  maxQueue: number;
  maxBackoff: number;
  stop: () => void;
}

let st: State | null = null;
let q: string[] = [];
let stats: Stats = { queued: 0, sent: 0, dropped: 0, refused: 0, retries: 0 };
let timer: ReturnType<typeof setTimeout> | 0 = 0;
let due = 0;
let inflight = false;
let backoff = 0;

const str = (s: string) => JSON.stringify(s);

function value(v: Value): string | null {
  switch (typeof v) {
    case "string":
      return `{"stringValue":${str(v)}}`;
    case "boolean":
      return `{"boolValue":${v}}`;
    case "number":
      if (!isFinite(v)) return null;
      return Number.isInteger(v) ? `{"intValue":"${v}"}` : `{"doubleValue":${v}}`;
  }
  return null;
}

function attrList(a: Attrs): string {
  const out: string[] = [];
  for (const k in a) {
    const v = value(a[k]);
    if (v) out.push(`{"key":${str(k)},"value":${v}}`);
  }
  return out.join(",");
}

/** keepUser decides, from a hash of id (or chance when there is none), whether a user's events are sent. */
function keepUser(rate: number, id?: string): boolean {
  if (rate >= 1) return true;
  if (id === undefined) return Math.random() < rate;
  let h = 2166136261; // FNV-1a, 32 bits
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return (h >>> 0) / 4294967296 < rate;
}

function schedule(ms: number) {
  const at = Date.now() + ms;
  if (timer && at >= due) return;
  if (timer) clearTimeout(timer);
  due = at;
  timer = setTimeout(() => {
    timer = 0;
    send(false);
  }, ms);
}

/** take removes the next batch from the queue: at most n events and MAX_BYTES of JSON. */
function take(n: number, budget: number): string[] {
  let bytes = 0;
  let i = 0;
  while (i < q.length && i < n && bytes + q[i].length + 1 <= budget) bytes += q[i++].length + 1;
  return q.splice(0, i);
}

function send(hiding: boolean) {
  const s = st;
  if (!s || !q.length || (inflight && !hiding)) return;
  let budget = MAX_BYTES;
  do {
    const batch = take(s.maxBatch, budget - s.head.length);
    if (!batch.length) {
      // One event larger than a request can be: it could never be sent.
      if (q.length && budget === MAX_BYTES) {
        q.shift();
        stats.refused++;
        continue;
      }
      break;
    }
    const body = `${s.head}${batch.join(",")}]}]}]}`;
    budget -= body.length;
    post(s, body, batch, hiding);
  } while (hiding && q.length);
  stats.queued = q.length;
}

function post(s: State, body: string, batch: string[], hiding: boolean) {
  if (!hiding) inflight = true;
  const requeue = () => {
    stats.retries++;
    // Put the batch back in front, oldest first; beyond the bound, the newest events are dropped.
    q = batch.concat(q);
    const over = q.length - s.maxQueue;
    if (over > 0) {
      q.splice(q.length - over);
      stats.dropped += over;
    }
    backoff = Math.min(s.maxBackoff, backoff ? backoff * 2 : 1000);
    schedule(backoff * (0.5 + Math.random() / 2));
  };
  const done = (ok: boolean, retry: boolean) => {
    if (!hiding) inflight = false;
    if (ok) {
      stats.sent += batch.length;
      backoff = 0;
    } else if (retry) {
      requeue();
    } else {
      stats.refused += batch.length;
    }
    stats.queued = q.length;
    if (q.length && !backoff) schedule(q.length >= s.maxBatch ? 0 : s.flushMs);
  };
  try {
    fetch(s.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
      keepalive: hiding,
      credentials: "omit",
      mode: "cors",
    }).then(
      (r) => {
        // Read the answer to its end: Chromium returns a keepalive request's share of the 64 KiB
        // quota only then, and a leaked quota would hold back every later send on page hide.
        r.arrayBuffer().catch(() => 0);
        done(r.ok, r.status === 408 || r.status === 429 || r.status >= 500);
      },
      () => done(false, true),
    );
  } catch {
    done(false, true);
  }
}

function emit(name: string, a: Attrs, body?: string, error?: boolean) {
  const s = st;
  if (!s || !s.keep) return;
  if (!validName(name)) {
    stats.refused++;
    return;
  }
  if (q.length >= s.maxQueue) {
    stats.dropped++;
    return;
  }
  const t = `${Math.round((performance.timeOrigin + performance.now()) * 1000)}000`;
  const all: Attrs = { [KEY_PAGE]: path(), ...a, ...s.attrs };
  if (s.adjusted !== 1) all["sampling.adjusted_count"] = s.adjusted;
  q.push(
    `{"timeUnixNano":"${t}","observedTimeUnixNano":"${t}","severityNumber":${error ? 17 : 9},` +
      `"severityText":"${error ? "ERROR" : "INFO"}","eventName":${str(name)},` +
      (body !== undefined ? `"body":{"stringValue":${str(body)}},` : "") +
      `"attributes":[${attrList(all)}]}`,
  );
  stats.queued = q.length;
  // While backing off after a failure, the retry timer is already set: new events wait for it.
  if (!backoff) schedule(q.length >= s.maxBatch ? 0 : s.flushMs);
}

const num = (v: unknown, d: number, lo: number, hi: number) =>
  typeof v === "number" && v >= lo && v <= hi ? v : d;

/**
 * init starts the client: it sends a page_view for the current page and installs the automatic
 * events. Calling it again replaces the configuration (queued events are kept). It never throws;
 * without endpoint or service it does nothing.
 */
export const init = guard((o: Options) => {
  if (st) st.stop();
  st = null;
  if (!o || typeof o.endpoint !== "string" || typeof o.service !== "string" || !o.service) return;
  const url = /\/v1\/logs$/.test(o.endpoint) ? o.endpoint : o.endpoint.replace(/\/$/, "") + "/v1/logs";
  const res = attrList({
    "service.name": o.service,
    "telemetry.sdk.name": "track-web",
    "telemetry.sdk.language": "webjs",
    "telemetry.sdk.version": VERSION,
  });
  const attrs: Attrs = {};
  const country = o.country || (o.location === "locale" ? localeCountry() : undefined);
  if (country) attrs[KEY_COUNTRY] = country;
  if (o.region) attrs[KEY_REGION] = o.region;
  const rate = num(o.sampleRate, 1, 0.01, 1);
  const s: State = {
    url,
    head: `{"resourceLogs":[{"resource":{"attributes":[${res}]},"scopeLogs":[{"scope":{"name":"track-web","version":"${VERSION}"},"logRecords":[`,
    attrs,
    adjusted: 1 / rate,
    rate,
    keep: true,
    flushMs: num(o.flushInterval, 5000, 0, 36e5),
    maxBatch: num(o.maxBatch, 100, 1, 1000),
    maxQueue: num(o.maxQueue, 1000, 1, 1e5),
    maxBackoff: num(o.maxBackoff, 60000, 1000, 36e5),
    stop: () => {},
  };
  st = s;
  setUser(o.user);
  const hide = guard(() => send(true));
  const vis = guard(() => {
    if (document.visibilityState === "hidden") send(true);
  });
  addEventListener("pagehide", hide);
  document.addEventListener("visibilitychange", vis);
  const off = capture(emit, o.auto || {});
  s.stop = () => {
    off();
    removeEventListener("pagehide", hide);
    document.removeEventListener("visibilitychange", vis);
  };
});

function setUser(id?: string) {
  const s = st;
  if (!s) return;
  if (typeof id === "string" && id) s.attrs[KEY_USER] = id;
  else delete s.attrs[KEY_USER];
  s.keep = keepUser(s.rate, s.attrs[KEY_USER] as string | undefined);
}

/** user sets (or, with no id, clears) the user of the events that follow. It never throws. */
export const user = guard((id?: string) => setUser(id));

/**
 * event queues a product event with optional attributes (strings, numbers, booleans; url.path is
 * the current page unless props set it). An invalid name (the Go library's rule: a letter, then
 * letters, digits, '_', '.', '-', '/', at most 255) is refused and counted. It never throws.
 */
export const event = guard((name: string, props?: Attrs) => emit(name, props && typeof props === "object" ? props : {}));

/** flush sends the queued events now (a send in flight is not duplicated). It never throws. */
export const flush = guard(() => send(false));

/** getStats returns a copy of the counters. */
export const getStats = (): Stats => ({ ...stats, queued: q.length });

/** The client as one object, as the plain script defines it on window.track. */
export const track = { init, event, user, flush, stats: getStats };
export default track;
