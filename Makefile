# pgkv: Redis protocol on PostgreSQL 16.
#
#   make run      install the toolchain, build, start a local cluster, serve RESP on 127.0.0.1:6379
#   make stop     stop that cluster
#   make test     everything `make run` installs, then every test
#   make install  install into any PG16: make install PG_CONFIG=/path/to/pg_config
#   make bench    pgkv vs redis-server with redis-benchmark

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
LOCAL_PG_CONFIG := $(CURDIR)/.pgkv/pg/pgserver/pginstall/bin/pg_config
PG_CONFIG ?= $(LOCAL_PG_CONFIG)
export PG_CONFIG

.PHONY: setup build install run stop test fuzz bench clean

# Seconds of fuzzing per target in `make test` (`make fuzz FUZZ_SECONDS=600`
# for a longer run).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request decode arguments

setup:
	@bash scripts/setup.sh

build: setup
	cargo build --release

install: setup
	cargo pgrx install --release --pg-config "$(PG_CONFIG)"

run: install
	@bash scripts/cluster.sh start

stop:
	@bash scripts/cluster.sh stop

test: install
	cargo test --release -p pgkv-resp
	cargo test --release -p pgkv-tests -- --test-threads=2
	$(MAKE) fuzz

# libFuzzer on the RESP request parser, the decoder and argument parsing,
# starting from the corpus kept in fuzz/corpus (new inputs go to a scratch
# directory, so the tree stays clean). cargo-fuzz wants nightly for its -Z
# flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them, and
# sanitizer "none" needs no nightly-only runtime. Any crash fails the run and
# leaves the input in fuzz/artifacts.
fuzz: setup
	@for t in $(FUZZ_TARGETS); do \
		scratch=$$(mktemp -d); \
		echo "fuzz $$t for $(FUZZ_SECONDS) s"; \
		(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none $$t $$scratch corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1) > $$scratch.log 2>&1; \
		status=$$?; \
		grep -E '^(Done|SUMMARY)|panicked|Failing input|^error' $$scratch.log; \
		rm -rf $$scratch; \
		if [ $$status -ne 0 ]; then echo "fuzz $$t failed (exit $$status); log: $$scratch.log"; exit 1; fi; \
		rm -f $$scratch.log; \
	done

# pgkv against redis-server in the same run (about 10 minutes); see README "Performance".
bench: install
	python3 scripts/bench.py

clean: stop
	cargo clean
	rm -rf .pgkv/data .pgkv/log .pgkv/run .pgkv/tmp
