# Shared paths for the scripts and the Makefile. Sourced, never executed.
PGKV_HOME=${PGKV_HOME:-$ROOT/.pgkv}
PG_CONFIG=${PG_CONFIG:-$PGKV_HOME/pg/pgserver/pginstall/bin/pg_config}
PGKV_OS_USER=${PGKV_OS_USER:-pgkv}
export PATH="$HOME/.cargo/bin:$PATH"
