# Strata's build. `make test` is the suite CI runs; longer suites have their
# own targets.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION ?= v0.8.2
TEST_TIMEOUT ?= 14m
BENCHTIME ?= 2s

.PHONY: all build run cluster cluster-stop test test-stress lint fmt bench bench-go scan-probe linearizability proto proto-check clean

all: build

## build: compile everything; binaries go to bin/ (kvnode, strata-embedded)
build:
	$(GO) build ./...
	$(GO) build -o bin/kvnode ./cmd/kvnode
	$(GO) build -o bin/strata-embedded ./examples/embedded

## run: one kvnode on the defaults in the foreground, data in ./strata-data (Ctrl-C stops it)
run: build
	./bin/kvnode start --data-dir ./strata-data

## cluster: three local kvnodes (127.0.0.1:7370-7373, 7380-7383, 7390-7393), data and logs in a temp folder
cluster: build
	@scripts/cluster.sh start

## cluster-stop: stop the nodes of `make cluster` (SIGTERM, then SIGKILL) and remove their folder
cluster-stop:
	@scripts/cluster.sh stop

## test: the whole suite with the race detector
test:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...
	cd cmd/kvbench && $(GO) test -race -timeout $(TEST_TIMEOUT) ./...

## test-stress: make test, uncached, while busy loops keep every core busy (BURNERS=n); the suite must stay green under load
test-stress:
	GOFLAGS=-count=1 scripts/with-cpu-burner.sh $(MAKE) test

## lint: formatting, vet, staticcheck and generated code being current
lint: proto-check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd cmd/kvbench && $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## linearizability: many seeds of the randomized fault tests (SEEDS=200; STRATA_SEED=n reruns one)
SEEDS ?= 20
linearizability:
	@log=$${TMPDIR:-/tmp}/strata-linearizability.log; echo "full output: $$log"; \
	bash -o pipefail -c "STRATA_SEEDS=$(SEEDS) $(GO) test -race -count=1 -timeout 0 -run 'TestRandomizedClusters' -v ./linearizability/ 2>&1 \
	  | tee $$log | grep -E '^ *(=== RUN|--- |PASS|FAIL|ok|panic)|_test\.go:[0-9]+:|DATA RACE' | grep -v ' nemesis: '"

## scan-probe: large scans on a 3-node kvnode cluster (bench/scanprobe): 200k × 1 KiB, 8 concurrent unlimited scans via each node, stalled readers; peak RSS per node (a few minutes; SCAN_PROBE_ARGS adds flags, e.g. --mode unary)
scan-probe:
	$(GO) build -o bin/kvnode ./cmd/kvnode
	$(GO) run ./bench/scanprobe --kvnode bin/kvnode $(SCAN_PROBE_ARGS)

## bench-go: the Go benchmarks (Put/Get on 1 and 3 nodes, group commit)
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m ./...

## bench: the Strata vs etcd suite (bench/run.sh; knobs DURATION, REPEATS, KEYS, ETCD_BIN... there); results in bench/results/
bench:
	$(GO) build -o bin/kvnode ./cmd/kvnode
	cd cmd/kvbench && $(GO) build -mod=mod -o ../../bin/kvbench .
	bench/run.sh

## proto: regenerate checked-in protobuf code (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
proto:
	PATH="$(GOBIN):$$PATH" $(GO) generate ./transport/transportpb/ ./api/ ./internal/kvpb/

## proto-check: fail if the generated code differs from its .proto (skipped without protoc)
proto-check:
	@if command -v protoc >/dev/null && [ -x "$(GOBIN)/protoc-gen-go" ] && [ -x "$(GOBIN)/protoc-gen-go-grpc" ]; then \
	  $(MAKE) -s proto && git diff --exit-code -- '*.pb.go' || { echo "generated code is stale: run make proto"; exit 1; }; \
	else echo "proto-check: protoc or its Go plugins missing; generated code not checked"; fi

clean:
	rm -rf bin strata-data

## jepsen: real kvnode clusters under faults (root; installs iptables if missing): each nemesis once with register+set, plus the unsafe-reads runs (local reads, lease reads) that must fail (~6 min). JEPSEN_ARGS adds flags.
## jepsen-long: every nemesis combination on 5 nodes, a minute of faults each (about an hour)
JEPSEN_DIR ?= $(or $(TMPDIR),/tmp)/strata-jepsen/$(shell date +%Y%m%d-%H%M%S)
.PHONY: jepsen jepsen-long jepsen-build
jepsen-build:
	@if [ "$$(id -u)" != 0 ]; then echo "make jepsen needs root: it cuts links with iptables (try: sudo make jepsen)"; exit 3; fi
	@command -v iptables >/dev/null || { echo "iptables missing: installing it"; (apt-get update -qq && apt-get install -y -qq iptables) >/dev/null || { echo "could not install iptables"; exit 3; }; }
	$(GO) build -o bin/kvnode ./cmd/kvnode
	$(GO) build -o bin/strata-jepsen ./jepsen

jepsen: jepsen-build
	./bin/strata-jepsen --kvnode bin/kvnode --matrix short --dir $(JEPSEN_DIR) $(JEPSEN_ARGS)

jepsen-long: jepsen-build
	./bin/strata-jepsen --kvnode bin/kvnode --matrix long --dir $(JEPSEN_DIR) $(JEPSEN_ARGS)
