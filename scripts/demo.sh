#!/usr/bin/env bash
# scripts/demo.sh: what `make demo` runs once `make collector` has built bin/otelcol-track.
#
#   1. Postgres: TRACK_PG_DSN if set, else a throwaway cluster on a free loopback port;
#   2. the collector (bin/otelcol-track --config examples/collector.yaml) on free loopback ports;
#   3. DEMO_HISTORY_MINUTES (30) minutes of per-minute history from examples/backfill, so the
#      per-minute charts have something to show, then the login and payment services live for
#      DEMO_SECONDS (60) seconds, one traffic cycle each (a burst and a dip to zero), beside
#      examples/web-signup (DEMO_VISITORS (10) new visitors a second through a four-step sign-up
#      form, its waits compressed DEMO_SPEED (4) times), which sends product events (track.Event);
#   4. waits until Postgres holds exactly what was counted and every event, then prints two charts
#      (cmd/trackchart), an analyst's SQL query with its result, the sign-up funnel
#      (track.funnel) and the most frequent errors (track.event_errors).
# Everything it started is stopped on exit, on error and on Ctrl-C; nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.demo
SECONDS_LIVE=${DEMO_SECONDS:-60}
HISTORY=${DEMO_HISTORY_MINUTES:-30}
VISITORS=${DEMO_VISITORS:-10}
SPEED=${DEMO_SPEED:-4}
COLLECTOR=$ROOT/bin/otelcol-track
BIN=$DEMO/bin

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

PIDS=()     # every background process this script started
PGDIR=""    # the throwaway cluster, when this script started one
PGBIN=""

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if ((${#PIDS[@]})) || [ -n "$PGDIR" ]; then
		say "stopping what the demo started"
	fi
	# Newest first: the services flush to the collector while it still runs (a Ctrl-C reaches
	# them all at once, so a service then gets 5 s before it is killed), then the collector.
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		if [ "${PIDS[i]}" = "${COLLECTOR_PID:-}" ]; then stop_pid "${PIDS[i]}" 20; else stop_pid "${PIDS[i]}" 5; fi
	done
	if [ -n "$PGDIR" ]; then
		as_postgres "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
		rm -rf "$PGDIR"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'printf "\ndemo: interrupted\n" >&2; exit 130' INT TERM

# free_port N: the first port from N up that nothing on 127.0.0.1 listens on.
free_port() {
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}

[ -x "$COLLECTOR" ] || die "$COLLECTOR is missing: run make demo (it builds the collector first)"
command -v curl >/dev/null || die "curl is needed to wait for the collector's health check"
rm -rf "$DEMO"
mkdir -p "$BIN" "$DEMO/data"

say "building the example services and the chart tool"
go build -o "$BIN/" ./examples/login-service ./examples/payment-service ./examples/backfill ./examples/web-signup ./cmd/trackchart

# --- Postgres -------------------------------------------------------------------------------
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
PSQL=$(command -v psql || true)
[ -z "$PSQL" ] && [ -n "$PGBIN" ] && PSQL=$PGBIN/psql
[ -n "$PSQL" ] || die "psql is needed (apt-get install postgresql-client-15)"
if [ -n "${TRACK_PG_DSN:-}" ]; then
	say "using the Postgres of TRACK_PG_DSN"
	DSN=$TRACK_PG_DSN
else
	[ -n "$PGBIN" ] || die "no Postgres: set TRACK_PG_DSN or apt-get install postgresql-15"
	PGPORT=$(free_port 55432)
	say "starting a throwaway Postgres on 127.0.0.1:$PGPORT ($PGBIN)"
	PGDIR=$(mktemp -d /tmp/track-demo-pg.XXXXXX)
	[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
	as_postgres "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --no-sync >"$DEMO/initdb.log" 2>&1 ||
		die "initdb failed: see $DEMO/initdb.log"
	as_postgres "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off" start >/dev/null ||
		die "Postgres did not start: $(tail -5 "$PGDIR/server.log")"
	DSN="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
fi
sql() { "$PSQL" "$DSN" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql -Atc 'SELECT 1' >/dev/null || die "cannot connect to Postgres"

# --- the collector --------------------------------------------------------------------------
GRPC=$(free_port 4317)
HTTP=$(free_port 4318)
HEALTH=$(free_port 13133)
say "starting the collector: OTLP gRPC 127.0.0.1:$GRPC, HTTP 127.0.0.1:$HTTP (log: .demo/collector.log)"
# The Go runtime settings examples/collector.yaml recommends: GOGC=200, GOMEMLIMIT at half the
# machine's memory (your own GOGC / GOMEMLIMIT win).
GOGC=${GOGC:-200} GOMEMLIMIT=${GOMEMLIMIT:-$(awk '/^MemTotal:/ {printf "%dMiB", $2 / 2048}' /proc/meminfo)} \
	TRACK_PG_DSN=$DSN \
	TRACK_OTLP_GRPC_ENDPOINT=127.0.0.1:$GRPC \
	TRACK_OTLP_HTTP_ENDPOINT=127.0.0.1:$HTTP \
	TRACK_HEALTH_ENDPOINT=127.0.0.1:$HEALTH \
	TRACK_PPROF_ENDPOINT=127.0.0.1:$(free_port 1777) \
	TRACK_TELEMETRY_PORT=$(free_port 8888) \
	TRACK_DATA_DIR=$DEMO/data \
	"$COLLECTOR" --config examples/collector.yaml --feature-gates=+extension.healthcheck.useComponentStatus >"$DEMO/collector.log" 2>&1 &
COLLECTOR_PID=$!
PIDS+=("$COLLECTOR_PID")
for ((i = 0; ; i++)); do
	curl -fsS -o /dev/null "http://127.0.0.1:$HEALTH/" 2>/dev/null && break
	kill -0 "$COLLECTOR_PID" 2>/dev/null || die "the collector exited: $(tail -20 "$DEMO/collector.log")"
	((i < 600)) || die "the collector is not healthy after 60 s: see .demo/collector.log"
	sleep 0.1
done
echo "    healthy (migrations applied, pipeline running)"

# --- traffic --------------------------------------------------------------------------------
say "sending $HISTORY minutes of history (examples/backfill)"
"$BIN/backfill" -endpoint "127.0.0.1:$GRPC" -minutes "$HISTORY" | tee "$DEMO/backfill.out" | sed 's/^/    /'

say "running login-service and payment-service for ${SECONDS_LIVE}s (one cycle: steady, burst, dip to zero),"
echo "    and web-signup: $VISITORS visitors/s through the sign-up form, waits compressed ${SPEED}x"
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$GRPC OTEL_METRIC_EXPORT_INTERVAL=5000
"$BIN/login-service" -duration "${SECONDS_LIVE}s" -cycle "${SECONDS_LIVE}s" >"$DEMO/login.out" 2>&1 &
LOGIN_PID=$!
PIDS+=("$LOGIN_PID")
"$BIN/payment-service" -duration "${SECONDS_LIVE}s" -cycle "${SECONDS_LIVE}s" >"$DEMO/payment.out" 2>&1 &
PAYMENT_PID=$!
PIDS+=("$PAYMENT_PID")
"$BIN/web-signup" -duration "${SECONDS_LIVE}s" -visitors "$VISITORS" -speed "$SPEED" >"$DEMO/signup.out" 2>&1 &
SIGNUP_PID=$!
PIDS+=("$SIGNUP_PID")

stored() { sql -Atc "SELECT coalesce(sum(value), 0)::bigint FROM track.minutely WHERE metric = '$1'"; }
start=$(date +%s)
events() { sql -Atc "SELECT count(*) FROM track.events"; }
while kill -0 "$LOGIN_PID" 2>/dev/null || kill -0 "$PAYMENT_PID" 2>/dev/null || kill -0 "$SIGNUP_PID" 2>/dev/null; do
	sleep 5
	printf '    %3ss: stored so far new-signup=%s fraudulent-card=%s card-checked=%s events=%s\n' \
		"$(($(date +%s) - start))" "$(stored new-signup)" "$(stored fraudulent-card)" "$(stored card-checked)" "$(events)"
done
wait "$LOGIN_PID" || die "login-service failed: $(cat "$DEMO/login.out")"
wait "$PAYMENT_PID" || die "payment-service failed: $(cat "$DEMO/payment.out")"
wait "$SIGNUP_PID" || die "web-signup failed: $(cat "$DEMO/signup.out")"
sed 's/^/    /' "$DEMO/login.out" "$DEMO/payment.out" "$DEMO/signup.out"

# --- exactly what was counted? ----------------------------------------------------------------
counted() { # counted METRIC: backfill plus live
	local live hist
	live=$(grep -ho "$1=[0-9]*" "$DEMO/login.out" "$DEMO/payment.out" | head -1 | cut -d= -f2)
	hist=$(grep -h " $1=" "$DEMO/backfill.out" | sed 's/.*=\([0-9]*\) .*/\1/')
	echo $((${live:-0} + ${hist:-0}))
}
say "waiting until Postgres holds exactly what was counted"
for m in new-signup fraudulent-card card-checked; do
	want=$(counted "$m")
	for ((i = 0; ; i++)); do
		got=$(stored "$m")
		[ "$got" = "$want" ] && break
		((i < 60)) || die "$m: stored $got, counted $want after 60 s"
		sleep 1
	done
	printf '    %-16s counted %8s  stored %8s  exact\n' "$m" "$want" "$got"
done
# The example config samples no event, so every event web-signup exported is stored.
want=$(grep -o 'exported [0-9]* events' "$DEMO/signup.out" | cut -d' ' -f2)
[ -n "$want" ] || die "web-signup did not report its events: $(cat "$DEMO/signup.out")"
for ((i = 0; ; i++)); do
	got=$(events)
	[ "$got" = "$want" ] && break
	((i < 60)) || die "events: stored $got, web-signup exported $want after 60 s"
	sleep 1
done
printf '    %-16s sent    %8s  stored %8s  exact\n' "events" "$want" "$got"

# --- what ops and analysts see ----------------------------------------------------------------
since=$((HISTORY + 2))m
say "chart: signups per minute, last $since"
"$BIN/trackchart" -dsn "$DSN" -metric new-signup -since "$since" -step 1m -height 8 -title "number of signups"
say "chart: fraudulent cards per minute, last $since"
"$BIN/trackchart" -dsn "$DSN" -metric fraudulent-card -since "$since" -step 1m -height 8 -title "number of fraudulent cards"

QUERY="-- Fraudulent cards per hour and reason over the last day, with the worst minute of each.
SELECT date_trunc('hour', time) AS hour,
       attributes->>'reason'    AS reason,
       sum(value)::bigint       AS fraudulent_cards,
       max(value)::bigint       AS worst_minute
  FROM track.minutely
 WHERE metric = 'fraudulent-card' AND time > now() - interval '1 day'
 GROUP BY 1, 2
 ORDER BY 1, 3 DESC;"
say "an analyst's query (psql \"\$TRACK_PG_DSN\")"
printf '%s\n\n' "$QUERY"
sql -c "$QUERY"

FUNNEL="-- Where do users drop out of the sign-up form? (track.funnel: users reaching each step in order
-- within 30 minutes of starting, conversion from the previous step, median time from it)
SELECT step, name,
       round(users)::bigint                                  AS users,
       coalesce(round(100 * conversion)::text || ' %', '')   AS \"from previous\",
       coalesce(round(extract(epoch FROM median_time), 1) || ' s', '') AS \"median time from previous\"
  FROM track.funnel(ARRAY['signup_start','signup_profile','signup_payment','signup_complete'],
                    now() - interval '1 hour', now(), interval '30 minutes');"
say "the sign-up funnel (web-signup's product events)"
printf '%s\n\n' "$FUNNEL"
sql -c "$FUNNEL"
printf '    web-signup counted: %s\n' "$(grep -o 'signup_start=.*signup_complete=[0-9]*' "$DEMO/signup.out")"

ERRORS="-- The most frequent errors (track.event_errors), with the top of the latest stack trace.
-- Emails and card numbers were redacted by the collector before anything was stored.
SELECT left(message, 70)                                   AS message,
       count::bigint                                       AS errors,
       to_char(last_seen, 'HH24:MI:SS')                    AS last_seen,
       replace(array_to_string((string_to_array(sample_stacktrace, E'\\n'))[1:2], ' '), E'\\t', '') AS \"latest stack (top frame)\"
  FROM track.event_errors
 ORDER BY count DESC
 LIMIT 5;"
say "the errors behind the drop-outs"
printf '%s\n\n' "$ERRORS"
sql -c "$ERRORS"

say "done; the collector log is in .demo/collector.log"
