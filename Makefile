# continuum: `make run` starts the daemon, `make test` runs every test.
# Both install what they need (Go modules, npm packages, llama.cpp libraries,
# Debian packages when run as root).

GO        ?= go
BIN       := bin
LLAMA_DIR := .cache/llama
FUZZTIME  ?= 10s

.PHONY: all build run test test-go test-fuzz check-fmt vet gen check-gen deps dashboard \
        llama-libs llama-libs-cuda bench clean test-bindings install

## install: binaries to $(DESTDIR)$(PREFIX)/bin, systemd units to
## $(DESTDIR)$(PREFIX)/lib/systemd/{user,system} (docs/SERVICE.md).
PREFIX    ?= /usr/local
DESTDIR   ?=

all: build

build:
	$(GO) build -o $(BIN)/continuumd ./cmd/continuumd
	$(GO) build -o $(BIN)/continuum ./cmd/continuum

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/user \
		$(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/continuum
	install -m 0755 $(BIN)/continuumd $(BIN)/continuum $(DESTDIR)$(PREFIX)/bin/
	for k in user system; do for u in continuumd.service continuumd.socket; do \
		sed 's|@BINDIR@|$(PREFIX)/bin|g; s|/usr/local/share/doc|$(PREFIX)/share/doc|g' \
			packaging/systemd/$$k/$$u > $(DESTDIR)$(PREFIX)/lib/systemd/$$k/$$u && \
		chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/$$k/$$u || exit 1; done; done
	install -m 0644 docs/SERVICE.md $(DESTDIR)$(PREFIX)/share/doc/continuum/

## run: build and start continuumd in the foreground with the default paths.
run: build llama-libs
	./$(BIN)/continuumd --llama-lib-dir $(LLAMA_DIR)/cpu $(ARGS)

## deps: Debian packages the tests need (installed when root, explained otherwise).
deps:
	@scripts/deps.sh

llama-libs:
	@scripts/fetch-llama-libs.sh cpu $(LLAMA_DIR)/cpu

llama-libs-cuda:
	@scripts/fetch-llama-libs.sh cuda $(LLAMA_DIR)/cuda

## test: every test: formatting, vet, Go tests with -race, a bounded fuzz run,
## generated bindings up to date, and the TypeScript/Python/browser clients.
test: deps llama-libs check-fmt vet test-go test-fuzz check-gen test-bindings

check-fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The bench module (the measuring programs) is vetted too, so a moved or
# renamed API cannot leave them broken until the next `make bench`.
vet:
	$(GO) vet ./...
	$(GO) -C bench vet ./...

test-go:
	CONTINUUM_LLAMA_LIB_DIR=$(CURDIR)/$(LLAMA_DIR)/cpu $(GO) test -race -count=1 -timeout 15m ./...

test-fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadMessage$$' -fuzztime $(FUZZTIME) ./ipc/msgrpc
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./alloy

## gen: the client bindings and docs/METHODS.md (go generate), then the
## dashboard bundle, which is built from the TypeScript client (needs npm).
gen:
	$(GO) generate ./...
	@scripts/build-dashboard.sh

## dashboard: rebuild dashboard/assets/dashboard.js and dashboard/bundle.sum.
dashboard:
	@scripts/build-dashboard.sh

check-gen:
	@if [ -d gen ]; then $(GO) run ./gen -check; fi

test-bindings:
	@if [ -x scripts/test-bindings.sh ]; then scripts/test-bindings.sh; fi

## bench: benchmarks against the named peers; figures go to docs/BENCHMARKS.md.
bench: build llama-libs
	@scripts/bench.sh

clean:
	rm -rf $(BIN)
