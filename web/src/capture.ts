// The automatic events: page views (also single-page-app navigation through the History API),
// clicks on elements marked data-track, scroll depth and uncaught errors. It only reads what it
// needs (the path, the data-track value, the scroll position, the error) and never the page's text.
// Both builds share it: our transport (track.ts) and the OpenTelemetry JS SDK build (otel.ts), so
// their sizes compare the transports alone.

/** The attribute keys of the Go library (track/events.go). */
export const KEY_PAGE = "url.path";
export const KEY_USER = "user.id";
export const KEY_COUNTRY = "geo.country.iso_code";
export const KEY_REGION = "geo.region.iso_code";
export const KEY_CLICK = "click.target";
export const KEY_SCROLL = "scroll.depth";
export const KEY_ERR_TYPE = "exception.type";
export const KEY_ERR_MSG = "exception.message";
export const KEY_STACK = "exception.stacktrace";

/** An attribute value: strings, finite numbers (integers are sent as OTLP ints) and booleans. */
export type Value = string | number | boolean;
export type Attrs = Record<string, Value>;

/** Emit hands one event to a transport; it must never throw. */
export type Emit = (name: string, attrs: Attrs, body?: string, error?: boolean) => void;

/** The longest stack trace sent, in characters (the collector keeps 16 KiB). */
const MAX_STACK = 8192;
/** The longest error message sent, in characters. */
const MAX_MSG = 1024;

/** Which automatic events to capture; every one is on unless set to false. */
export interface Auto {
  pageViews?: boolean;
  clicks?: boolean;
  scroll?: boolean;
  errors?: boolean;
}

/** guard runs f and swallows anything it throws: the client never throws into the page. */
export function guard<A extends unknown[]>(f: (...a: A) => void): (...a: A) => void {
  return (...a: A) => {
    try {
      f(...a);
    } catch {
      // Nothing: a broken client must not break the page.
    }
  };
}

/** path is the current URL path (never the query string or fragment, which may hold PII). */
export const path = (): string => location.pathname;

function errorAttrs(e: unknown, fallback: string): [Attrs, string] {
  const err = e instanceof Error ? e : null;
  const msg = String(err ? err.message : e === undefined ? fallback : e).slice(0, MAX_MSG);
  const a: Attrs = { [KEY_ERR_TYPE]: err ? err.name || "Error" : typeof e, [KEY_ERR_MSG]: msg };
  if (err && err.stack) a[KEY_STACK] = err.stack.slice(0, MAX_STACK);
  return [a, msg];
}

/**
 * capture installs the automatic events and returns a function that removes them. Scroll depth is
 * reported once per threshold (25, 50, 75, 100 %) and page view, on pages taller than the window.
 */
export function capture(emit: Emit, auto: Auto): () => void {
  const off: Array<() => void> = [];
  const on = (t: EventTarget, type: string, f: (e: any) => void, opts?: AddEventListenerOptions) => {
    const g = guard(f);
    t.addEventListener(type, g, opts);
    off.push(() => t.removeEventListener(type, g, opts));
  };
  let reached = 0;
  let last = "";
  const view = () => {
    const p = path();
    if (p === last) return;
    last = p;
    reached = 0;
    if (auto.pageViews !== false) emit("page_view", { [KEY_PAGE]: p });
  };
  if (auto.pageViews !== false) {
    const h = history;
    for (const m of ["pushState", "replaceState"] as const) {
      const orig = h[m];
      h[m] = function (this: History, ...args: Parameters<History["pushState"]>) {
        const r = orig.apply(this, args);
        guard(view)();
        return r;
      };
      off.push(() => {
        h[m] = orig;
      });
    }
    on(window, "popstate", view);
    view();
  }
  if (auto.clicks !== false) {
    on(document, "click", (e: MouseEvent) => {
      const el = e.target instanceof Element ? e.target.closest("[data-track]") : null;
      const target = el && el.getAttribute("data-track");
      if (target) emit("click", { [KEY_PAGE]: path(), [KEY_CLICK]: target });
    }, { capture: true, passive: true });
  }
  if (auto.scroll !== false) {
    on(window, "scroll", () => {
      const d = document.documentElement;
      const height = d.scrollHeight - innerHeight;
      // A page that fits the window has no depth to report (a scroll event there comes from the
      // browser clamping the position after the content shrank, not from the reader).
      if (height <= 0) return;
      const pct = ((scrollY + 1) / height) * 100;
      while (reached < 4 && pct >= (reached + 1) * 25) {
        reached++;
        emit("scroll", { [KEY_PAGE]: path(), [KEY_SCROLL]: reached * 25 });
      }
    }, { passive: true });
  }
  if (auto.errors !== false) {
    on(window, "error", (e: ErrorEvent) => {
      const [a, msg] = errorAttrs(e.error ?? e.message, "error");
      a[KEY_PAGE] = path();
      emit("error", a, msg, true);
    });
    on(window, "unhandledrejection", (e: PromiseRejectionEvent) => {
      const [a, msg] = errorAttrs(e.reason, "unhandled rejection");
      a[KEY_PAGE] = path();
      emit("error", a, msg, true);
    });
  }
  return () => off.splice(0).forEach((f) => f());
}

/** NAME is the Go library's rule for event names (track/name.go). */
const NAME = /^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$/;

/** validName reports whether name is an event name the Go library would accept. */
export const validName = (name: unknown): name is string => typeof name === "string" && NAME.test(name);

/**
 * localeCountry is the region subtag of the browser's preferred language ("de-AT" → "AT"): a coarse
 * hint of the country the person reads in, not a measurement of where they are. It is sent only
 * when init is given location: "locale".
 */
export function localeCountry(): string | undefined {
  const m = /^[a-z]{2,3}(?:-[A-Za-z]{4})?-([A-Z]{2})\b/.exec(navigator.language || "");
  return m ? m[1] : undefined;
}
