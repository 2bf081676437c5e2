# Strata's build. `make test` is the suite CI runs; longer suites have their
# own targets.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION ?= v0.8.2
TEST_TIMEOUT ?= 14m
BENCHTIME ?= 2s

.PHONY: all build run test lint fmt bench linearizability proto proto-check clean

all: build

build:
	$(GO) build ./...
	$(GO) build -o bin/strata-embedded ./examples/embedded

## run: the embedded example on ./strata-data (single node, Pebble only)
run: build
	./bin/strata-embedded -dir ./strata-data

## test: the whole suite with the race detector
test:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

## lint: formatting, vet, staticcheck and generated code being current
lint: proto-check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## linearizability: many seeds of the randomized fault tests (SEEDS=200; STRATA_SEED=n reruns one)
SEEDS ?= 20
linearizability:
	@STRATA_SEEDS=$(SEEDS) $(GO) test -race -count=1 -timeout 0 -run 'TestRandomizedClusters' -v ./linearizability/ \
	  | grep -E '^(=== RUN|---|PASS|FAIL|ok)|linearizability:|reproduce|not linearizable'

## bench: the Go benchmarks (Put/Get on 1 and 3 nodes, group commit)
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m ./...

## proto: regenerate checked-in protobuf code (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
proto:
	PATH="$(GOBIN):$$PATH" $(GO) generate ./transport/transportpb/ ./api/

## proto-check: fail if the generated code differs from its .proto (skipped without protoc)
proto-check:
	@if command -v protoc >/dev/null && [ -x "$(GOBIN)/protoc-gen-go" ] && [ -x "$(GOBIN)/protoc-gen-go-grpc" ]; then \
	  $(MAKE) -s proto && git diff --exit-code -- '*.pb.go' || { echo "generated code is stale: run make proto"; exit 1; }; \
	else echo "proto-check: protoc or its Go plugins missing; generated code not checked"; fi

clean:
	rm -rf bin strata-data
