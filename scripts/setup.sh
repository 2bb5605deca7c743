#!/usr/bin/env bash
# Installs everything pgkv needs on a fresh Debian 12 machine and builds the
# extension into a project-local PostgreSQL 16 tree. Idempotent and fast on a
# second run: every step checks before it installs.
#
#   apt:   libclang-dev (bindgen), redis-server + redis-tools (redis-cli, the
#          reference server for differential tests, redis-benchmark)
#   pip:   pgserver==0.1.4, the relocatable PG16 wheel, into .pgkv/pg
#   cargo: cargo-pgrx 0.18.0, cargo-fuzz 0.13.2
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/env.sh

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else log "need root for: $*"; return 1
    fi
}

# --- apt -------------------------------------------------------------------
need_apt=()
for pkg in libclang-dev redis-server redis-tools build-essential pkg-config libssl-dev python3-pip ca-certificates curl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
# Debian's python3-pip is only needed when no pip is on PATH already.
if python3 -m pip --version >/dev/null 2>&1; then
    need_apt=("${need_apt[@]/python3-pip/}")
fi
if [ "${#need_apt[@]}" -gt 0 ] && [ -n "$(echo "${need_apt[@]}" | tr -d ' ')" ]; then
    log "apt-get install ${need_apt[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${need_apt[*]}
fi

# --- rust --------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
        log "installing rustup"
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    }
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# --- PostgreSQL 16 from the pgserver wheel -------------------------------------
if [ ! -x "$PG_CONFIG" ]; then
    log "pip install pgserver==0.1.4 into $PGKV_HOME/pg"
    rm -rf "$PGKV_HOME/pg"
    python3 -m pip install -q --disable-pip-version-check --no-deps --target "$PGKV_HOME/pg" pgserver==0.1.4
fi

# --- cargo-pgrx ------------------------------------------------------------------
if ! cargo pgrx --version 2>/dev/null | grep -q ' 0\.18\.0'; then
    log "cargo install cargo-pgrx 0.18.0 (about 6 minutes on 2 cores)"
    cargo install --locked cargo-pgrx --version 0.18.0
fi
# --- cargo-fuzz (make test fuzzes the wire codec for a bounded time) --------
if ! cargo fuzz --version 2>/dev/null | grep -q ' 0\.13\.2'; then
    log "cargo install cargo-fuzz 0.13.2 (about 2 minutes)"
    cargo install --locked cargo-fuzz --version 0.13.2
fi
# `init` only records the pg_config path in ~/.pgrx/config.toml.
if ! grep -qs "pg16 = \"$PG_CONFIG\"" "$HOME/.pgrx/config.toml"; then
    cargo pgrx init --pg16="$PG_CONFIG" >/dev/null
fi

# --- unprivileged OS user for postgres when we are root -----------------------------
if [ "$(id -u)" = 0 ] && ! id "$PGKV_OS_USER" >/dev/null 2>&1; then
    log "creating OS user $PGKV_OS_USER to run postgres (it refuses to run as root)"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PGKV_OS_USER"
fi
