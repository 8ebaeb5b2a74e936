# gridmind — `make test` is the test command CI runs (.ci/run).
GO       ?= go
# Packages that share state between goroutines get the race detector.
RACE_PKGS = ./node/... ./p2p/... ./api/... ./app/... ./jobs/... ./diloco/... ./serve/... ./chain/...

.PHONY: test vet race build bench fuzz demo print-race-pkgs

build:
	$(GO) build -o gridmind ./cmd/gridmind

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

test: vet
	$(GO) test -count=1 -timeout 9m ./...
	$(MAKE) race

race:
	$(GO) test -race -short -count=1 -timeout 9m $(RACE_PKGS)

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

demo:
	$(GO) run ./cmd/gridmind demo

print-race-pkgs:
	@echo $(RACE_PKGS)
