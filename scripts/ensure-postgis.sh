#!/usr/bin/env bash
# Make sure a PostgreSQL server with PostGIS is reachable, then print the superuser URL
# of its maintenance database on stdout (everything else goes to stderr).
#
# Order (the first that applies wins; SIFC_DB_MODE=url|local|docker|cluster forces one):
#   1. url     SIFC_ADMIN_DATABASE_URL is given: use it as it is.
#   2. local   a PostgreSQL listens on 127.0.0.1:5432: install the PostGIS package of its
#              version when missing (Debian/Ubuntu), use the local superuser.
#   3. docker  a Docker engine answers `docker info`: `docker compose up -d db`.
#   4. cluster install PostgreSQL + PostGIS from the OS packages and create a cluster
#              named `sifc` on port SIFC_PG_PORT (5439 by default), trust auth on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode="${SIFC_DB_MODE:-auto}"
port="${SIFC_PG_PORT:-5439}"

postgis_available() {  # $1 = libpq URL
    [ "$(psql "$1" -XAtc "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'" 2>/dev/null)" = "1" ]
}

install_postgis_for() {  # $1 = libpq URL of a running server
    local major
    major="$(psql "$1" -XAtc "SELECT current_setting('server_version_num')::int / 10000")" \
        || die "impossible d'interroger le serveur PostgreSQL local"
    apt_install "postgresql-${major}-postgis-3"
}

use_url() {
    echo "$SIFC_ADMIN_DATABASE_URL"
}

use_local() {
    local url="postgresql://postgres@127.0.0.1:5432/postgres"
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    psql "$url" -XAtc 'SELECT 1' >/dev/null 2>&1 \
        || die "PostgreSQL écoute sur 127.0.0.1:5432 mais refuse « postgres » sans mot de passe : donnez SIFC_ADMIN_DATABASE_URL"
    if ! postgis_available "$url"; then
        say "PostGIS absent du serveur local : installation"
        install_postgis_for "$url"
        postgis_available "$url" || die "PostGIS toujours indisponible après installation"
    fi
    echo "$url"
}

use_docker() {
    say "démarrage de PostGIS avec Docker (docker compose up -d db)"
    docker compose up -d db >&2
    local url="postgresql://postgres:postgres@127.0.0.1:${SIFC_DOCKER_PG_PORT:-5432}/postgres"
    for _ in $(seq 1 60); do
        if docker compose exec -T db pg_isready -U postgres >/dev/null 2>&1; then
            echo "$url"; return 0
        fi
        sleep 2
    done
    die "le conteneur PostGIS ne répond pas"
}

use_cluster() {
    if ! command -v pg_createcluster >/dev/null 2>&1; then
        apt_install postgresql postgresql-common
    fi
    local major
    major="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    [ -n "$major" ] || die "aucune version de PostgreSQL installée"
    [ -f "/usr/share/postgresql/${major}/extension/postgis.control" ] || apt_install "postgresql-${major}-postgis-3"
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "${major} sifc"; then
        say "création du cluster PostgreSQL ${major}/sifc sur le port ${port}"
        as_root pg_createcluster "$major" sifc -p "$port" -- --auth-local=trust --auth-host=trust >&2
    fi
    as_root pg_ctlcluster "$major" sifc start >&2 2>/dev/null || true
    for _ in $(seq 1 30); do
        tcp_open 127.0.0.1 "$port" && break
        sleep 1
    done
    local url="postgresql://postgres@127.0.0.1:${port}/postgres"
    psql "$url" -XAtc 'SELECT 1' >/dev/null || die "le cluster ${major}/sifc ne répond pas sur le port ${port}"
    echo "$url"
}

case "$mode" in
    url) use_url ;;
    local) use_local ;;
    docker) use_docker ;;
    cluster) use_cluster ;;
    auto)
        if [ -n "${SIFC_ADMIN_DATABASE_URL:-}" ]; then use_url
        elif tcp_open 127.0.0.1 5432; then use_local
        elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then use_docker
        else use_cluster
        fi ;;
    *) die "SIFC_DB_MODE inconnu : $mode (url, local, docker ou cluster)" ;;
esac
