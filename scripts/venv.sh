#!/usr/bin/env bash
# Create .venv and install the project with its test tools, at the exact versions (and hashes) of
# requirements/lock.txt (`make lock` refreshes it from pyproject.toml); skipped when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PY="$(find_python)" || { apt_install python3 python3-venv python3-pip; PY="$(find_python)" || die "Python >= 3.11 introuvable"; }
stamp=".venv/.sifc-installed"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt requirements/lock.txt ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    say "création de l'environnement virtuel (.venv) avec $PY"
    if ! "$PY" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install python3-venv
        "$PY" -m venv .venv
    fi
fi
say "installation des dépendances Python (pip, requirements/lock.txt)"
# The lock pins pip itself; every package is checked against its hashes. The project comes after, alone.
.venv/bin/python -m pip install -q --require-hashes -r requirements/lock.txt >&2
.venv/bin/python -m pip install -q --no-deps -e . >&2
touch "$stamp"
