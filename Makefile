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

.PHONY: test bench lint build tools generate clean

$(BIN)/mdatagen: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/mdatagen go.opentelemetry.io/collector/cmd/mdatagen
$(BIN)/builder: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/builder go.opentelemetry.io/collector/cmd/builder
$(BIN)/staticcheck: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

tools: $(TOOLS)

## build: compile every package and example.
build:
	$(GO) build $(PKGS)

## test: the whole suite with the race detector and goleak; storage tests start
## their own throwaway Postgres unless TRACK_TEST_DSN is set.
test: build
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## bench: every benchmark; figures go to BENCHMARKS.md as ratios to a peer
## measured in the same run.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem -cpu 1,2 $(PKGS)

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
