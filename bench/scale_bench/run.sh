#!/usr/bin/env bash
# The scale benchmark on a fresh Debian/Ubuntu machine: virtual environment, PostgreSQL + PostGIS
# (found or installed by scripts/ensure-postgis.sh), pg_dump and pg_restore, then
#   python -m bench.scale_bench ARGS...
# It uses (and loads when missing) the databases of `bench/serve_bench/run.sh --scales`.
# Example: bash bench/scale_bench/run.sh --scales 1000000,10000000
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

bash scripts/venv.sh
command -v pg_restore >/dev/null 2>&1 || apt_install postgresql-client
with_database sifc_bench_serve
exec .venv/bin/python -m bench.scale_bench "$@"
