# Shared helpers for the set-up scripts (sourced, not run).
# shellcheck shell=bash

say() { printf '\033[1;34m[sifc]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[sifc] erreur :\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "il faut les droits root pour : $* (ou fournissez SIFC_ADMIN_DATABASE_URL)"; fi
}

APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get absent : installez $* à la main, ou donnez SIFC_ADMIN_DATABASE_URL"
    if [ -z "$APT_UPDATED" ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >&2
}

# tcp_open HOST PORT: whether something listens there (no client needed).
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Python >= 3.11 for the virtual environment.
find_python() {
    for candidate in "${SIFC_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

# with_database NAME: export SIFC_ADMIN_DATABASE_URL and SIFC_DATABASE_URL for database NAME.
#   - both URLs given: their database is replaced by NAME only when SIFC_FORCE_DB_NAME=1;
#   - only SIFC_DATABASE_URL given: migrations run with it too (a role that owns its database);
#   - nothing given: scripts/ensure-postgis.sh finds or installs a server.
replace_db() {  # URL NAME -> URL with its database replaced
    local url="$1" name="$2" query=""
    case "$url" in *\?*) query="?${url#*\?}"; url="${url%%\?*}" ;; esac
    echo "${url%/*}/${name}${query}"
}

with_database() {
    local name="$1"
    if [ -n "${SIFC_ADMIN_DATABASE_URL:-}" ] || [ -n "${SIFC_DATABASE_URL:-}" ]; then
        SIFC_ADMIN_DATABASE_URL="${SIFC_ADMIN_DATABASE_URL:-$SIFC_DATABASE_URL}"
        SIFC_DATABASE_URL="${SIFC_DATABASE_URL:-$(replace_db "$SIFC_ADMIN_DATABASE_URL" "$name" | sed -E 's#//[^@/]*@#//sifc_app:sifc_app@#')}"
        if [ "${SIFC_FORCE_DB_NAME:-0}" = "1" ]; then
            SIFC_ADMIN_DATABASE_URL="$(replace_db "$SIFC_ADMIN_DATABASE_URL" "$name")"
            SIFC_DATABASE_URL="$(replace_db "$SIFC_DATABASE_URL" "$name")"
        fi
    else
        local server hostport
        server="$(scripts/ensure-postgis.sh)"
        hostport="${server##*@}"; hostport="${hostport%%/*}"
        SIFC_ADMIN_DATABASE_URL="$(replace_db "$server" "$name")"
        SIFC_DATABASE_URL="postgresql://sifc_app:sifc_app@${hostport}/${name}"
    fi
    export SIFC_ADMIN_DATABASE_URL SIFC_DATABASE_URL
}
