#!/usr/bin/env bash
# First command of the README: set everything up and serve the API on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

scripts/venv.sh
with_database "${SIFC_DB_NAME:-sifc}"
say "provisionnement de la base (PostGIS, migrations)"
.venv/bin/sifc db provision
say "chargement du référentiel territorial"
.venv/bin/sifc territories load
say "chargement des parcelles de démonstration (synthétiques)"
.venv/bin/sifc demo load
say "API sur http://${SIFC_HOST:-127.0.0.1}:${SIFC_PORT:-8000} (documentation : /docs)"
exec .venv/bin/sifc serve
