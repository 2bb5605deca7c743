#!/usr/bin/env bash
# Starts or stops the project-local PostgreSQL 16 cluster with pgkv preloaded.
#   scripts/cluster.sh start | stop | status
# Data lives in .pgkv/data and survives restarts. As root, postgres runs as
# the unprivileged user $PGKV_OS_USER (postgres refuses to run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/env.sh

PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
PGDATA=$PGKV_HOME/data
RUNDIR=$PGKV_HOME/run
LOG=$PGKV_HOME/log/postgres.log
BINDIR=$("$PG_CONFIG" --bindir)

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$PGKV_OS_USER" -- "$@"; else "$@"; fi
}

start() {
    mkdir -p "$PGKV_HOME/log" "$RUNDIR"
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$PGDATA"
        chown "$PGKV_OS_USER" "$PGDATA" "$PGKV_HOME/log" "$RUNDIR"
    fi
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        as_pg "$BINDIR/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
        cat >> "$PGDATA/postgresql.conf" <<CONF

# --- pgkv ---
shared_preload_libraries = 'pgkv'
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$RUNDIR'
pgkv.port = $REDIS_PORT
pgkv.listen_addresses = '127.0.0.1'
CONF
    fi
    if ! as_pg "$BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG" -w start >/dev/null
    fi
    "$BINDIR/psql" -h "$RUNDIR" -p "$PGPORT" -U postgres -d postgres -qAt \
        -c "CREATE EXTENSION IF NOT EXISTS pgkv" >/dev/null
    # A cluster made by a build from before kv.zsets was keyed by member
    # hash (no released version has an update script yet).
    local old_zsets
    old_zsets=$("$BINDIR/psql" -h "$RUNDIR" -p "$PGPORT" -U postgres -d postgres -qAt \
        -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'kv.zsets'::regclass AND attname = 'seq' AND NOT attisdropped")
    if [ "$old_zsets" = 1 ]; then
        echo "pgkv: bringing kv.zsets to this build's schema (sql/migrate/zsets_member_hash.sql)"
        "$BINDIR/psql" -h "$RUNDIR" -p "$PGPORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
            -f "$ROOT/sql/migrate/zsets_member_hash.sql" >/dev/null
    fi
    for _ in $(seq 1 100); do
        if [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
            cat <<MSG
pgkv is serving Redis on 127.0.0.1:$REDIS_PORT (PostgreSQL 16 on port $PGPORT).

  redis-cli -p $REDIS_PORT
  $BINDIR/psql -h $RUNDIR -p $PGPORT -U postgres postgres
      SELECT kv.get('greeting');

  logs: $LOG
  stop: make stop
MSG
            return 0
        fi
        sleep 0.1
    done
    echo "pgkv did not answer PING on port $REDIS_PORT; see $LOG" >&2
    tail -20 "$LOG" >&2
    return 1
}

stop() {
    if [ -f "$PGDATA/PG_VERSION" ]; then
        as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    echo "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) as_pg "$BINDIR/pg_ctl" -D "$PGDATA" status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
