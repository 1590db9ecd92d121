#!/usr/bin/env bash
# Install the web application's one third-party asset, MapLibre GL JS, from the npm registry into
# web/node_modules (npm ci: exactly web/package-lock.json); skipped when up to date. The service serves it
# from there (api/routers/web.py): the map never needs a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

stamp="web/node_modules/.sifc-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt web/package-lock.json ] && [ "$stamp" -nt web/package.json ]; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
say "installation de MapLibre GL JS (npm ci --prefix web)"
npm ci --prefix web --no-audit --no-fund --loglevel=error >&2
touch "$stamp"
