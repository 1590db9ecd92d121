#!/usr/bin/env bash
# Install the web application's third-party assets from the npm registry into web/node_modules (npm ci:
# exactly web/package-lock.json): MapLibre GL JS for the map, Swagger UI (swagger-ui-dist) and ReDoc for the
# API documentation at /docs and /redoc; skipped when up to date. The service serves them from there
# (api/routers/web.py): neither the map nor the documentation ever needs a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

stamp="web/node_modules/.sifc-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt web/package-lock.json ] && [ "$stamp" -nt web/package.json ]; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
say "installation de MapLibre GL JS, Swagger UI et ReDoc (npm ci --prefix web)"
npm ci --prefix web --no-audit --no-fund --loglevel=error >&2
touch "$stamp"
