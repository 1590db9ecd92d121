#!/usr/bin/env bash
# First command of the README: set everything up and serve the API on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

scripts/venv.sh
scripts/web.sh
with_database "${SIFC_DB_NAME:-sifc}"
say "clés de signature des jetons et des documents : créées au premier démarrage, jamais à saisir"
.venv/bin/sifc keys signing
say "provisionnement de la base (PostGIS, migrations)"
.venv/bin/sifc db provision
say "chargement du référentiel territorial"
.venv/bin/sifc territories load
say "chargement des parcelles de démonstration (synthétiques)"
.venv/bin/sifc demo load
if [ -n "${SIFC_DEMO_KEY_FILE:-}" ]; then
    # Only when asked (CI's smoke test), only in development: an import key written to a private file.
    if [ "${SIFC_ENVIRONMENT:-development}" != "development" ]; then
        say "SIFC_DEMO_KEY_FILE ignoré hors de l'environnement de développement"
    else
        say "clé d'API de démonstration (analyste_sig, tout le pays) écrite dans $SIFC_DEMO_KEY_FILE"
        (umask 077; .venv/bin/sifc keys create --name demo-smoke --role analyste_sig --scope pays:SN \
            >"$SIFC_DEMO_KEY_FILE.part" && mv "$SIFC_DEMO_KEY_FILE.part" "$SIFC_DEMO_KEY_FILE")
    fi
fi
say "API sur http://${SIFC_HOST:-127.0.0.1}:${SIFC_PORT:-8000} (documentation : /docs)"
exec .venv/bin/sifc serve
