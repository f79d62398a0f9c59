# jobstream's developer commands. The README's two commands are
# `go run ./cmd/jobstream serve --dev` and `make test`.

GO ?= go
FUZZTIME ?= 10s

.PHONY: test test-short fuzz build generate lint bench

## test: the whole suite against real PostgreSQL (DATABASE_URL, else the
## local server, else a private cluster), with the race detector, then a
## short run of every fuzz target.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

## fuzz: run each fuzz target briefly (FUZZTIME per target).
fuzz:
	@for target in $$($(GO) test -list '^Fuzz' ./... 2>/dev/null | grep '^Fuzz' ); do \
		pkg=$$(grep -rl "func $$target(" --include='*_test.go' internal cmd | head -1 | xargs dirname); \
		echo "fuzz $$target in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

## build: the jobstream binary in ./bin.
build:
	$(GO) build -o bin/jobstream ./cmd/jobstream

## generate: regenerate internal/store/dbsqlc from sql/queries (needs sqlc and
## a PostgreSQL it can migrate a scratch database in).
SQLC_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/jobstream_sqlc
generate:
	psql "$(dir $(SQLC_DATABASE_URL))postgres" -qc 'DROP DATABASE IF EXISTS $(notdir $(SQLC_DATABASE_URL))' -c 'CREATE DATABASE $(notdir $(SQLC_DATABASE_URL))'
	$(GO) run github.com/pressly/goose/v3/cmd/goose@v3.29.0 -dir migrations postgres "$(SQLC_DATABASE_URL)" up
	cd sql && SQLC_DATABASE_URL="$(SQLC_DATABASE_URL)" $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc@v1.27.0 generate

## bench: every figure of the README's Performance table, one run after
## another, each a `jobstream bench` table appended to BENCH_OUT with the
## date, commit and machine first (~15 minutes at 20 s each). The headline
## rows (1,000 and 300 streams x 50 tokens/s against the raw PostgreSQL
## group-commit load, --compare raw) run BENCH_RUNS times, for their spread;
## the last row is a minute at twice what the writer can commit.
## Run it on an otherwise idle machine.
BENCH_OUT ?= bench.out
BENCH_FLAGS ?= --duration 20s
BENCH_RUNS ?= 3
bench: build
	@{ echo "date: $$(date -u +%FT%TZ)"; echo "commit: $$(git rev-parse --short HEAD)$$(git diff --quiet || echo -dirty)"; \
	  echo "machine: $$(nproc) CPUs, $$(awk '/MemTotal/ {printf "%.0f GiB", $$2/1048576}' /proc/meminfo), $$(uname -sr), load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	  echo "postgres: $$(psql -XAtc 'SHOW server_version' "$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" 2>/dev/null)"; } | tee $(BENCH_OUT)
	@for run in $$(seq $(BENCH_RUNS)); do for args in \
		"--mode sse --streams 1000 --rate 50 --compare raw" \
		"--mode sse --streams 300 --rate 50 --compare raw"; do \
		echo "== run $$run: jobstream bench $$args $(BENCH_FLAGS)" | tee -a $(BENCH_OUT); \
		./bin/jobstream bench $$args $(BENCH_FLAGS) --quiet | tee -a $(BENCH_OUT) || exit 1; \
	done; done
	@for args in \
		"--mode sse --streams 500 --rate 50" \
		"--mode longpoll --streams 1000 --rate 50 --linger 100ms" \
		"--mode longpoll --streams 300 --rate 50 --linger 100ms" \
		"--mode longpoll --streams 100 --readers 10 --rate 50 --linger 0" \
		"--mode sse --streams 10 --rate 10" \
		"--mode sse --streams 100 --rate 10" \
		"--mode sse --streams 1000 --rate 10" \
		"--mode semoss --streams 1000 --rate 10" \
		"--mode sse --streams 1000 --rate 50 --write-mode batched,naive"; do \
		echo "== jobstream bench $$args $(BENCH_FLAGS)" | tee -a $(BENCH_OUT); \
		./bin/jobstream bench $$args $(BENCH_FLAGS) --quiet | tee -a $(BENCH_OUT) || exit 1; \
	done
	@# Overload: twice what the writer commits, for a minute, 5 s jobs.
	@args="--mode sse --streams 2000 --rate 50 --tokens 250 --duration 60s --grace 180s"; \
	echo "== jobstream bench $$args" | tee -a $(BENCH_OUT); \
	./bin/jobstream bench $$args --quiet | tee -a $(BENCH_OUT)

lint:
	$(GO) vet ./...
	gofmt -l cmd internal migrations | (! grep .)
