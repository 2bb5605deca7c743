#!/bin/sh
# Runs once, when the image initialises an empty data directory.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" -c "CREATE EXTENSION IF NOT EXISTS pgkv"
