#!/usr/bin/env bash
# Make sure nginx (the production profile's TLS proxy, from the OS packages) is installed, then
# print the path of its binary on stdout. Used by tests/e2e/test_tls_proxy.py, which runs the
# same proxy configuration (deploy/nginx/sifc.conf.template) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

find_nginx() {
    command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || return 1
}

if ! find_nginx >/dev/null; then
    apt_install nginx
fi
find_nginx || die "nginx introuvable après installation"
