#!/usr/bin/env bash
# The field benchmark on a fresh Debian/Ubuntu machine: virtual environment, PostgreSQL + PostGIS
# (found or installed by scripts/ensure-postgis.sh), GDAL's ogr2ogr and its Python bindings (the
# returned package is edited through them, as QGIS does), then
#   python -m bench.field_bench [run|prepare] ARGS...
# Example: bash bench/field_bench/run.sh --runs 5
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

bash scripts/venv.sh
command -v ogr2ogr >/dev/null 2>&1 || apt_install gdal-bin
/usr/bin/python3 -c 'from osgeo import ogr' >/dev/null 2>&1 || apt_install python3-gdal
with_database sifc_bench_template
exec .venv/bin/python -m bench.field_bench "$@"
