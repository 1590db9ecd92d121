#!/usr/bin/env bash
# The serving benchmark on a fresh Debian/Ubuntu machine: virtual environment, PostgreSQL +
# PostGIS (found or installed by scripts/ensure-postgis.sh), wrk and pgbench, TiPg in its own
# virtual environment (bench/serve_bench/.venv-tipg), then
#   python -m bench.serve_bench ARGS...
# Example: bash bench/serve_bench/run.sh --rounds 3 --duration 20
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

bash scripts/venv.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v pgbench >/dev/null 2>&1 || apt_install postgresql-client
with_database sifc_bench_serve
exec .venv/bin/python -m bench.serve_bench "$@"
