#!/usr/bin/env bash
# The import benchmark on a fresh Debian/Ubuntu machine: virtual environment, PostgreSQL +
# PostGIS (found or installed by scripts/ensure-postgis.sh), GDAL's ogr2ogr, then
#   python -m bench.import_bench [run|generate|profile] ARGS...
# Example: bash bench/import_bench/run.sh --parcels 200000 --runs 3
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

bash scripts/venv.sh
command -v ogr2ogr >/dev/null 2>&1 || apt_install gdal-bin
with_database sifc_bench_template
exec .venv/bin/python -m bench.import_bench "$@"
