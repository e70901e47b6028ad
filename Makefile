# track: the one entry point. Every tool is built at a pinned version from
# tools/go.mod into ./bin, so a fresh clone needs nothing but Go.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO      ?= go
BIN     := $(CURDIR)/bin
PKGS    := ./...
# make test must stay well under 15 minutes on 2 cores.
TEST_TIMEOUT ?= 12m
BENCH   ?= .
BENCHTIME ?= 1s

TOOLS := $(BIN)/mdatagen $(BIN)/builder $(BIN)/staticcheck

.PHONY: test bench fuzz lint build commands tools generate clean collector demo demo-stop web chromium

$(BIN)/mdatagen: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/mdatagen go.opentelemetry.io/collector/cmd/mdatagen
$(BIN)/builder: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/builder go.opentelemetry.io/collector/cmd/builder
$(BIN)/staticcheck: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
$(BIN)/benchstat: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/benchstat golang.org/x/perf/cmd/benchstat

tools: $(TOOLS)

## build: compile every package and example, and build the commands into bin/.
build: commands
	$(GO) build $(PKGS)

## commands: bin/trackchart (terminal charts), bin/trackctl (the schema owner's tool) and
## bin/trackwatch (posts anomalies to a webhook).
commands:
	$(GO) build -o $(BIN)/ ./cmd/trackchart ./cmd/trackctl ./cmd/trackwatch

## collector: bin/otelcol-track, the collector distribution. ocb (bin/builder, pinned in
## tools/go.mod) generates otelcol-track/ from builder-config.yaml (not committed: it is
## regenerated whenever builder-config.yaml or the root go.mod changes), then go build compiles
## it with ocb's own flags. Cold: ~5 minutes and ~3 GB; warm: seconds.
COLLECTOR := $(BIN)/otelcol-track
otelcol-track/go.mod: builder-config.yaml go.mod go.sum | $(BIN)/builder
	@echo "==> generating otelcol-track/ from builder-config.yaml (ocb v0.161.0)"
	$(BIN)/builder --config builder-config.yaml --skip-compilation --skip-strict-versioning=false
	@touch $@
collector: otelcol-track/go.mod
	@echo "==> compiling $(COLLECTOR) (the first build takes ~5 minutes and ~3 GB of memory)"
	cd otelcol-track && CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(COLLECTOR) .

## demo: a throwaway Postgres (or TRACK_PG_DSN), the collector, the example services (login, payment and
## the web-signup funnel) for about a minute, then two charts, an analyst's query and the funnel, and a run
## of every SQL statement of the README's "Queries for analysts"; stops everything it started, also on Ctrl-C.
## The driver is examples/demo (DEMO_SECONDS, DEMO_HISTORY_MINUTES, DEMO_VISITORS, DEMO_SPEED, TRACK_PG_DSN).
## make demo KEEP=1 keeps the throwaway Postgres running with the demo's data and prints its DSN and
## commands to try; make demo-stop stops and removes it (a new make demo does too).
demo: collector commands
	$(GO) build -o $(BIN)/trackdemo ./examples/demo
	$(if $(KEEP),DEMO_KEEP=$(KEEP)) $(BIN)/trackdemo

## demo-stop: stops and removes the Postgres that make demo KEEP=1 left running.
demo-stop:
	$(GO) build -o $(BIN)/trackdemo ./examples/demo
	$(BIN)/trackdemo -stop

## web: the browser client (web/): npm ci at the versions pinned in web/package-lock.json, then
## web/build.mjs type-checks it (tsc), bundles web/dist/track.js (plain script) and track.mjs (ES
## module) with esbuild, builds the OpenTelemetry JS SDK comparison, and fails over 8 KiB gzipped.
WEB_DEPS := web/node_modules/.package-lock.json
$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@
web: $(WEB_DEPS)
	cd web && node build.mjs

## chromium: Debian's chromium for the browser tests (e2e/web_test.go drives it with playwright-core
## from web/node_modules); installed with apt-get when $(CHROMIUM) is missing.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "==> installing Debian's chromium for the browser tests"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi
	@"$(CHROMIUM)" --version

## test: the whole suite with the race detector and goleak; storage tests start
## their own throwaway Postgres unless TRACK_TEST_DSN is set. The end-to-end tests
## (e2e/) run the built collector, and the browser test (e2e/web_test.go) the built
## client in Chromium, so all three are built or installed first.
test: build collector web chromium
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## bench: every benchmark; figures go to BENCHMARKS.md as ratios to a peer
## measured in the same run.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem -cpu 1,2 $(PKGS)

## fuzz: every fuzz target for FUZZTIME each (make test runs only their seeds). Targets are found
## with grep, so a new one is fuzzed without editing this file.
FUZZTIME ?= 1m
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./otelcol-track/'); do \
	  dir=$$(dirname $$f); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "==> $$dir $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./$$dir || exit 1; \
	  done; \
	done

## lint: formatting, go vet and staticcheck at a pinned version.
lint: $(BIN)/staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(BIN)/staticcheck $(PKGS)

## generate: regenerate mdatagen code for our collector components.
generate: $(BIN)/mdatagen
	PATH="$(BIN):$$PATH" $(GO) generate $(PKGS)

clean:
	rm -rf $(BIN)
