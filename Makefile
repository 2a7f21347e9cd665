# pgtrail — common tasks. `make test` is the test suite CI runs.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 10s

.PHONY: all build test test-short vet fmt demo fuzz bench faults-long

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/pgtrail ./cmd/pgtrail
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/localaws ./cmd/localaws

# The whole suite against a real PostgreSQL (TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/postgres) and the in-process emulators.
test: vet
	$(GO) test -race -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Fuzz every target for FUZZTIME each: a duration (FUZZTIME=10m) or a count
# of runs (CI: FUZZTIME=10000x, which Go's coordinator cannot fail on its
# own deadline, golang/go#75804).
fuzz:
	$(GO) test ./worker -run '^$$' -fuzz '^FuzzParseNotification$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cloudtrail -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cloudtrail -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cloudtrail -run '^$$' -fuzz '^FuzzParseDigestKey$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cloudtrail -run '^$$' -fuzz '^FuzzParseDigest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cloudtrail -run '^$$' -fuzz '^FuzzDigestLogReader$$' -fuzztime $(FUZZTIME)

demo:
	./scripts/demo.sh

# The fault suite's long profile (docs/reliability.md); `make test` runs the short one.
faults-long:
	$(GO) test ./faultsuite/ -run TestFaults -v -count=1 -timeout 60m -long

# The throughput benchmark (bench/cmd/pgtrail-bench): decode and COPY limits,
# pgtrail run across object concurrencies, pgtrail ingest, one 1 GB object,
# json vs jsonb; writes bench/results.json and bench/throughput.png. Needs
# the PostgreSQL of `make test`. BENCHFLAGS=-quick is the CI smoke run.
BENCHFLAGS ?= -big 1 -storage
bench: build
	$(GO) run ./bench/cmd/pgtrail-bench -bin bin/pgtrail -out bench $(BENCHFLAGS)
