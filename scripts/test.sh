#!/usr/bin/env bash
# Second command of the README: provision a separate test database and run the whole suite.
# `scripts/test.sh --setup-only` installs and provisions everything and runs no test (CI times the two apart).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The printed documents' tests rasterise PDFs with pdftoppm.
command -v pdftoppm >/dev/null 2>&1 || apt_install poppler-utils
# The OGC client tests run GDAL's own command-line tools, ogrinfo and ogr2ogr.
command -v ogr2ogr >/dev/null 2>&1 || apt_install gdal-bin
# ... and QGIS's OGC API - Features provider, headless, with the system Python QGIS is built for.
/usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1 || apt_install --no-install-recommends python3-qgis qgis-providers
scripts/venv.sh
scripts/web.sh
SIFC_FORCE_DB_NAME=1 with_database "${SIFC_TEST_DB_NAME:-sifc_test}"
say "provisionnement de la base de test (${SIFC_DATABASE_URL##*/})"
.venv/bin/sifc db provision
if [ "${1:-}" = "--setup-only" ]; then exit 0; fi
export SIFC_ENVIRONMENT=test
exec .venv/bin/python -m pytest "$@"
