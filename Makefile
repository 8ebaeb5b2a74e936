# gridmind — `make test` is the test command CI runs (.ci/run).
GO       ?= go
# Packages that share state between goroutines get the race detector.
RACE_PKGS = ./node/... ./p2p/... ./api/... ./app/... ./jobs/... ./diloco/... ./serve/... ./chain/... ./gomlx/... ./train/...
# The concurrent tests that -short skips (DiLoCo workers over real libp2p, a whole job with a
# crash and a standby, fail-over during requests) are raced too, selected by name; measured
# under -race on the 2-core machine, quiet: 2 min 7 s wall (the job test 114 s; 193 s under load),
# and the inference audits on a local network (app, 27 s under load); a mixed fleet of paced
# workers (internal/wan, 14 s: the trainer's progress read when a round goes ahead).
# Left out, with what races their code instead: tests of separate processes (the detector
# cannot see across processes: chain crash and four-validator tests, devnet, escrow processes);
# TestThirtyNodeNetwork and TestMesh30AllToAll (30 hosts: load tests; TestFiveNodeNetwork and
# the p2p gossip tests race the same code); TestP2PMLP* (the same worker and transport as
# TestP2PToy*, plus GoMLX compute that -race slows past the tests' deadlines; gomlx is raced
# in race-short).
RACE_LONG_PKGS = ./diloco/ ./jobs/ ./serve/p2pnet/ ./app/ ./internal/wan/
RACE_LONG_RUN  = ^(TestP2PToyWorkersAgree|TestP2PToyChurn|TestP2PTransportDelivers|TestP2PTransportGatesStreamsBeforeReading|TestJobWithCrashAndStandby|TestLoopbackKillDuringRequests|TestInferenceAuditsOnTheNetwork|TestWorkersArePaidWhenTheRequesterWithholds|TestProtocolEvidenceIsFiledAndSlashes|TestMixedFleetTrainsTogether)$$

.PHONY: test vet race race-short race-long build bench fuzz demo portable print-race-pkgs

build:
	$(GO) build -o gridmind ./cmd/gridmind

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

test: vet
	$(GO) test -count=1 -timeout 9m ./...
	$(MAKE) race

race: race-short race-long

race-short:
	$(GO) test -race -short -count=1 -timeout 12m $(RACE_PKGS)

race-long:
	$(GO) test -race -count=1 -timeout 12m -run '$(RACE_LONG_RUN)' $(RACE_LONG_PKGS)

# Long measurements, recorded in docs/BENCHMARKS.md.
bench: build
	./gridmind bench p2p
	./gridmind bench ledger
	./gridmind bench market
	./gridmind bench train
	./gridmind bench infer

# Short runs of every fuzz target (go test -fuzz takes one target at a time).
FUZZTIME ?= 15s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Every package type-checks on macOS (Apple silicon) and 64-bit ARM Linux
# (about 3 minutes with a cold cache, so not part of test: there train's
# TestScalarBuildDeclaresWhatThePackageUses guards the codec's scalar
# build; Windows is not supported: the node uses Unix signals and process
# groups).
portable:
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=linux GOARCH=arm64 $(GO) vet ./...

demo:
	$(GO) run ./cmd/gridmind demo

print-race-pkgs:
	@echo $(RACE_PKGS) $(RACE_LONG_PKGS)
