#!/usr/bin/env bash
# The federation benchmark on a Debian/Ubuntu machine with PostgreSQL 15 + PostGIS and postgresql-common
# (pg_createcluster): virtual environment, wrk, then
#   python -m bench.federation_bench ARGS...
# Its four throwaway clusters (ports 5471-5474) are dropped when it ends, however it ends (unless --keep).
# Example: bash bench/federation_bench/run.sh --parcels 200000 --runs 3
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

bash scripts/venv.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
case " $* " in
  *" --keep "*) ;;
  *) trap '.venv/bin/python -m bench.federation_bench --down >/dev/null 2>&1 || true' EXIT ;;
esac
.venv/bin/python -m bench.federation_bench "$@"
