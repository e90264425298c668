# hookgate — see README.md.
GO      ?= go
BIN     := bin/hookgate
CONFIG  ?= configs/hookgate.yaml
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 1m

.PHONY: build run test bench fuzz lint clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/hookgate

# run starts the gateway on the embedded default configuration (events go
# to data/events.jsonl) after printing a curl that fires each example.
run: build
	@$(BIN) check -config $(CONFIG)
	@echo "--- fire the example automations from another terminal:"
	@$(BIN) urls -curl -config $(CONFIG)
	@echo "--- accepted events are appended to data/events.jsonl"
	$(BIN) serve -config $(CONFIG)

# test is what CI runs: vet, every test with the race detector, then the
# tests the race detector's own allocations would break (//go:build
# !race: zero allocations per request, bytes per token) without it.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Alloc|BytesPerToken' ./...

# fuzz runs each fuzz target for FUZZTIME (default 1m; a count such as
# 30000x avoids Go 1.26's deadline race at the end of a timed run).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# ROUNDS is how many alternated bare/scenario pairs give each ratio's median.
ROUNDS ?= 3

# bench runs the Go benchmarks, then the load-generator suite against the
# real binary with a bare fasthttp server as the baseline in the same run;
# it prints a markdown table and writes bench/results/<date>.json and .svg.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) build -o bin/hookbench ./cmd/hookbench
	bin/hookbench -hookgate $(BIN) -rounds $(ROUNDS) -out bench/results

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin
