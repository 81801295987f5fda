# shortfleet: see README.md. `make up` starts the local fleet, `make test`
# installs what the tests need (as root, with apt-get) and runs them all.

GO      ?= go
BIN     := bin
STATE   := .fleet
N       ?= 2
TESTTIMEOUT ?= 19m
FUZZTIME ?= 10s
SOAK    ?= 30m

.PHONY: up down admin build test test-allocs deps deps-fleet soak fault-report failover-report bench bench-lb bench-go bench-proxy bench-mapreduce bench-primary bench-latency fmt vet lint fuzz provision-check clean

build:
	$(GO) build -o $(BIN)/ ./primary ./proxy ./mapreduce ./provisioning/fleet

## up: start the whole fleet locally (N proxies, default 2); Ctrl-C or `make down` stops it.
up: build deps-fleet
	$(BIN)/fleet up -n $(N) -state $(STATE) -bin $(BIN)

## down: stop the fleet `make up` started.
down:
	$(GO) run ./provisioning/fleet down -state $(STATE)

## admin: make the account EMAIL (signed up already) an admin of the fleet
## `make up` runs, who sees the fleet page: make admin EMAIL=you@example.com
admin:
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=you@example.com"; exit 2; }
	$(GO) run ./provisioning/fleet admin -state $(STATE) -bin $(BIN) "$(EMAIL)"

## deps: install what the fleet and tests need and this machine lacks.
deps:
	@./provisioning/deps.sh test

## deps-fleet: install only what the local fleet runs (make up).
deps-fleet:
	@./provisioning/deps.sh fleet

## test: every test (unit, database, end-to-end) with the race detector.
test: deps
	$(GO) vet ./...
	# provisioning/localfleet, the end-to-end tests, is the longest package
	# by far (12 to 15 minutes): it starts at once, beside the others,
	# instead of when go test's package order reaches it (14 minutes in,
	# in a clean run). -parallel 3: its tests marked parallel are
	# functional, and mostly wait; three fleets at a time fit in 2 cores
	# and 24 GiB. Both runs' results count.
	@$(GO) test -race -count=1 -parallel 3 -timeout $(TESTTIMEOUT) ./provisioning/localfleet/ & e2e=$$!; \
	$(GO) test -race -count=1 -parallel 3 -timeout $(TESTTIMEOUT) $$($(GO) list ./... | grep -v '/provisioning/localfleet$$'); rest=$$?; \
	wait $$e2e; e2e=$$?; \
	if [ $$rest -ne 0 ] || [ $$e2e -ne 0 ]; then echo "make test: FAIL (other packages: exit $$rest, provisioning/localfleet: exit $$e2e)"; exit 1; fi
	$(MAKE) --no-print-directory test-allocs

# Allocation tests: the race detector allocates, so they run without it,
# built only for the packages that have one (building every package's
# tests again without -race took minutes of make test).
test-allocs:
	$(GO) test -count=1 -run 'Allocs' $$(grep -rlE --include='*_test.go' 'func Test[A-Za-z0-9_]*Allocs' . | xargs -n1 dirname | sort -u)

## soak: the fleet under steady load for SOAK (default 30m): memory and
## descriptors of every process flat, stats exact at the end; its log into
## README.md. Not in CI.
soak: deps
	SHORTFLEET_SOAK=$(SOAK) SHORTFLEET_SOAK_REPORT=$(CURDIR)/.fleet-soak.md $(GO) test -count=1 -v -run 'TestSoak$$' -timeout 3h ./provisioning/localfleet/
	@./provisioning/readme-section.sh soak .fleet-soak.md README.md '`make soak SOAK=$(SOAK)` (TestSoak)'

## fault-report: run the fault drill and put its table into README.md.
fault-report: deps
	SHORTFLEET_FAULT_REPORT=$(CURDIR)/.fleet-faults.md $(GO) test -count=1 -v -run 'TestFaultsUnderLoad$$' ./provisioning/localfleet/
	@./provisioning/readme-section.sh faults .fleet-faults.md README.md '`make fault-report` (TestFaultsUnderLoad)'

## failover-report: run the failover drills and put their figures into README.md.
failover-report: deps
	SHORTFLEET_FAILOVER_REPORT=$(CURDIR)/.fleet-failover.md $(GO) test -count=1 -v -run 'TestFailoverDrills$$' -timeout 15m ./provisioning/localfleet/
	@./provisioning/readme-section.sh failover .fleet-failover.md README.md '`make failover-report` (TestFailoverDrills)'

## fuzz: run every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	  done; \
	done

# make bench's knobs; the defaults are the published run (the report about 10 minutes
# on 2 cores, about 15 for bench-lb's, 12 for the rest). A quick check: make bench
# BENCH_LINKS=1000000 BENCH_LINKS_SMALL=100000 BENCH_DURATION=3s
# BENCH_RECORDS=300000 BENCH_PROXIES=4
BENCH_LINKS       ?= 10000000
BENCH_LINKS_SMALL ?= 1000000
BENCH_DURATION    ?= 10s
BENCH_CONNS       ?= 16,64,256
BENCH_RECORDS     ?= 3000000
BENCH_PROXIES     ?= 16
BENCH_ARGS        ?=

## bench: every benchmark driver, one after another, on one build: the
## fleet report (bench/results/<date>-report.md with SVG charts, its section
## of bench/README.md, the latest table in README.md), then bench-lb's,
## bench-proxy's, bench-mapreduce's, bench-primary's and bench-latency's
## runs; every driver's
## closing "bench: NAME VALUE" lines into README.md's headline table.
bench: build
	@BENCH=1 ./provisioning/deps.sh
	@rm -f .bench-lines
	@./bench/headlines.sh .bench-lines report $(GO) run ./bench/cmd/report -bin $(BIN) -links $(BENCH_LINKS) -links-small $(BENCH_LINKS_SMALL) \
	  -duration $(BENCH_DURATION) -connections $(BENCH_CONNS) -records $(BENCH_RECORDS) -proxies $(BENCH_PROXIES) $(BENCH_ARGS)
	@./bench/headlines.sh .bench-lines lbbench $(LB_BENCH) -links $(BENCH_LINKS) -duration $(BENCH_DURATION) -proxies $(BENCH_PROXIES)
	@./provisioning/readme-section.sh bench-lb .bench-lb.md README.md '`make bench` (bench/cmd/lbbench)'
	@./bench/headlines.sh .bench-lines proxybench $(GO) run ./bench/cmd/proxybench -bin $(BIN)
	@./bench/headlines.sh .bench-lines mapreducebench $(GO) run ./bench/cmd/mapreducebench -bin $(BIN)
	@./bench/headlines.sh .bench-lines primarybench $(GO) run ./bench/cmd/primarybench -bin $(BIN)
	@./bench/headlines.sh .bench-lines latbench $(GO) run ./bench/cmd/latbench -bin $(BIN)
	@./bench/headlines.sh --publish .bench-lines README.md

LB_BENCH = $(GO) run ./bench/cmd/lbbench -bin $(BIN) -top .bench-lb.md

## bench-lb: the balancer path: HAProxy before the proxies beside HAProxy
## before nginx, before and after issue 19, round-robin against consistent
## hashing; into bench/README.md and README.md. BENCH_LB_ARGS shrinks it:
## BENCH_LB_ARGS='-links 100000 -duration 2s -rounds 1 -proxies 4'
bench-lb: build
	@BENCH=1 ./provisioning/deps.sh
	$(LB_BENCH) $(BENCH_LB_ARGS)
	@./provisioning/readme-section.sh bench-lb .bench-lb.md README.md '`make bench-lb` (bench/cmd/lbbench)'

## bench-latency: open-loop p50/p99/p99.9 at 600 and 6,000 redirects/s, a
## proxy beside nginx and HAProxy before the proxies beside HAProxy before
## nginx, and nginx twice for the noise, into bench/README.md; about 4 minutes. BENCH_LATENCY_ARGS shrinks
## it: BENCH_LATENCY_ARGS='-rounds 1 -duration 2s'
bench-latency: build
	@BENCH=1 ./provisioning/deps.sh
	$(GO) run ./bench/cmd/latbench -bin $(BIN) $(BENCH_LATENCY_ARGS)

## bench-go: the Go micro-benchmarks.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-primary: link creation through the API beside pgbench.
bench-primary: build
	@BENCH=1 ./provisioning/deps.sh
	$(GO) run ./bench/cmd/primarybench -bin $(BIN)

## bench-mapreduce: ingest speed beside decoding, and one 3M-record run.
bench-mapreduce: build
	$(GO) run ./bench/cmd/mapreducebench -bin $(BIN)

## bench-proxy: the proxy beside nginx and pgbench, into bench/README.md.
bench-proxy: build
	@BENCH=1 ./provisioning/deps.sh
	$(GO) run ./bench/cmd/proxybench -bin $(BIN)

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## provision-check: ansible-playbook --syntax-check, ansible-lint, the rendered
## HAProxy and Postgres configurations against the local fleet's, haproxy -c,
## promtool; then, as root, the real apply to throwaway hosts (TestApply),
## with add_proxy.yml and remove_proxy.yml, which make test leaves out.
provision-check: deps
	SHORTFLEET_APPLY_ADD_REMOVE=1 $(GO) test -count=1 -timeout 60m -v -run 'Test(SyntaxCheck|AnsibleLint|TemplateLookupIsTheModule|HAProxyMatchesAnsible|HAProxyRoleChecksCert|PostgresConfMatchesAnsible|Prometheus|AppEnvironmentAndUnits|PrimaryRefusesInsecureCookies|Apply)$$' ./provisioning/ansible/

clean:
	rm -rf $(BIN) $(STATE)
