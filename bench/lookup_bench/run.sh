#!/usr/bin/env bash
# The NICAD lookup benchmark on a fresh Debian/Ubuntu machine: virtual environment, PostgreSQL + PostGIS (found or
# installed by scripts/ensure-postgis.sh), then
#   python -m bench.lookup_bench ARGS...
# Example: bash bench/lookup_bench/run.sh --versions 1000000 --runs 5
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

bash scripts/venv.sh
with_database sifc_bench_template
exec .venv/bin/python -m bench.lookup_bench "$@"
