#!/usr/bin/env bash
# Make sure Debian's chromium is installed (the browser tests drive it with Playwright; no browser is ever
# downloaded by Playwright), then print the path of its binary on stdout. Used by tests/e2e/slow_clients/test_web_map.py.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

find_chromium() {
    for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
        [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
    return 1
}

if ! find_chromium >/dev/null; then
    apt_install chromium
fi
find_chromium || die "chromium introuvable après installation"
