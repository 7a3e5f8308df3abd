# Akosha warm tier. `make run` starts everything on this machine (akosha dev);
# `make test` runs every test. Both build what they need (Go modules come from the
# module proxy; DuckDB and the Temporal server are compiled in, no other install).

GO      ?= go
BIN     := bin/akosha
PKGS    := ./...
# go test flags for `make test`; the first build of the Temporal server takes minutes.
TESTFLAGS ?= -count=1 -timeout 25m
BENCHTIME ?= 20x
BENCHCOUNT ?= 5

export CGO_ENABLED := 1

.PHONY: all build run test test-deploy test-faults promtool test-short bench bench-backup bench-restore bench-aging bench-migrate bench-dr bench-compact lint fmt fuzz clean

all: lint test

build:
	$(GO) build -o $(BIN) ./cmd/akosha

## run: akosha dev — embedded Temporal + Web UI (:8233), worker shard 0, HTTP API (:8682)
run: build
	./$(BIN) dev

## test: every test, including the kill -9, Temporal integration and `akosha dev` smoke tests,
## then the deployment checks (deploy/check, a module of its own: Kubernetes and compose)
test: promtool
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $(PKGS)
	$(MAKE) test-deploy

## test-deploy: Kubernetes manifests (strict k8s.io/api decoding, kustomize builds, references)
## and compose files (compose-go); builds the akosha binary to resolve the pods' paths
test-deploy:
	cd deploy/check && $(GO) vet ./... && $(GO) test $(TESTFLAGS) ./...

# promtool (Debian's prometheus package) checks the alert rules in deploy/prometheus;
# installed when missing (as root, or with sudo). The package's Prometheus server is
# stopped and disabled where systemd runs it: it would take :9090, the worker's default
# metrics port.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
promtool:
	@command -v promtool >/dev/null || { echo "installing promtool: apt-get install prometheus"; \
		command -v apt-get >/dev/null || { echo "promtool is missing and there is no apt-get: install Prometheus's promtool"; exit 1; }; \
		$(SUDO) apt-get install -y --no-install-recommends prometheus >/dev/null || \
		{ $(SUDO) apt-get update >/dev/null && $(SUDO) apt-get install -y --no-install-recommends prometheus >/dev/null; }; \
		! command -v systemctl >/dev/null || $(SUDO) systemctl disable --now prometheus >/dev/null 2>&1 || true; }

## test-faults: the whole fault-injection suite (kill -9 at every step, S3 faults, disk full,
## load), regenerating docs/RELIABILITY.md from what it saw; `make test` runs a short form
RELIABILITY := docs/RELIABILITY.md
test-faults:
	@tmp=$$(mktemp); \
	printf '%s\n' '# Reliability' '' \
	  'What the fault-injection suite saw, written by the suite itself: `make test-faults`' \
	  '(the tests named in each section; a failed test writes nothing). Data lost must be 0.' \
	  "Last run: $$(date -u +%Y-%m-%d) at $$(git rev-parse --short HEAD), on $$(nproc) cores." > $$tmp; \
	AKOSHA_FAULTS=all AKOSHA_RELIABILITY_OUT=$$tmp $(GO) test -count=1 -timeout 60m -p 1 \
	  -run 'TestKillWorkerMidOperation|TestIngestUnderOperations|TestBackupOnS3Faults|TestBackupScratchFull|TestWorkerDiskFull|TestDiskFull' \
	  ./cmd/akosha/ ./engine/ ./engine/backup/ ./worker/ && mv $$tmp $(RELIABILITY) && echo "wrote $(RELIABILITY)" || { rm -f $$tmp; exit 1; }

test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: durable ingest (engine and HTTP) and backup, each beside its baselines; see docs/BENCHMARKS.md
## (the -bench pattern is every benchmark but engine's Age*1M, which bench-aging runs once each)
bench: bench-backup bench-restore bench-aging bench-migrate bench-dr bench-compact
	$(GO) test -run '^$$' -bench '^Benchmark([^A]|A[^g])' -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./engine/ ./engine/wal/ ./worker/...

## bench-backup: backup of a 1M-conversation warm.db beside cp+gzip+sha256sum and zstd -T0 -1
## (the dataset is generated once under $$AKOSHA_BENCH_DIR, default ~/.akosha/bench)
bench-backup:
	$(GO) test -run '^$$' -bench 'Backup1M' -benchtime 1x -count $(BENCHCOUNT) ./engine/backup/

## bench-restore: restore of the same warm.db beside sha256sum+gunzip, and WAL replay rate
bench-restore:
	$(GO) test -run '^$$' -bench 'Restore1M|Replay' -benchtime 1x -count $(BENCHCOUNT) ./engine/restore/

## bench-migrate: moving the 1M-conversation store to a new directory (fence time) beside cp + sync of its files
bench-migrate:
	$(GO) test -run '^$$' -bench 'Migrate1M' -benchtime 1x -count $(BENCHCOUNT) ./engine/relocate/

## bench-dr: RTO of each disaster-recovery runbook on the 1M-conversation shard (real Temporal, per step)
bench-dr:
	$(GO) test -run '^$$' -bench 'DR1M' -benchtime 1x -count $(BENCHCOUNT) -timeout 30m ./starter/

## bench-compact: compaction of the 1M-conversation warm.db after half of it is deleted, beside a bare DuckDB rewrite
bench-compact:
	$(GO) test -run '^$$' -bench 'Compact1M' -benchtime 1x -count $(BENCHCOUNT) -timeout 30m ./activities/

## bench-aging: hot -> warm and warm -> cold of 1M conversations beside bare DuckDB INSERT ... SELECT / COPY TO parquet
## (the hot dataset is generated once under $$AKOSHA_BENCH_DIR; AKOSHA_BENCH_AGING_ROWS=n for a quick try)
bench-aging:
	$(GO) test -run '^$$' -bench 'AgeHotToWarm1M|AgeWarmToCold1M' -benchtime 1x -count $(BENCHCOUNT) -timeout 120m ./engine/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd deploy/check && $(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: run each fuzz target for FUZZTIME (the seed corpora also run in `make test`)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./worker/ingest/
	$(GO) test -run '^$$' -fuzz '^FuzzFloat$$' -fuzztime $(FUZZTIME) ./worker/ingest/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME) ./engine/wal/
	$(GO) test -run '^$$' -fuzz '^FuzzOpenSegment$$' -fuzztime $(FUZZTIME) ./engine/wal/
	$(GO) test -run '^$$' -fuzz '^FuzzRecordPayload$$' -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME) ./engine/backup/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config/

clean:
	rm -rf bin
