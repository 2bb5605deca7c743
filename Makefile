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

.PHONY: setup build install run stop test bench clean

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

# pgkv against redis-server in the same run (about 10 minutes); see README "Performance".
bench: install
	python3 scripts/bench.py

clean: stop
	cargo clean
	rm -rf .pgkv/data .pgkv/log .pgkv/run .pgkv/tmp
