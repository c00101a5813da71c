#!/usr/bin/env bash
# Create (if missing) the benchmark-only venv bench/.venv-dbos and install DBOS Transact 3.4.x.
# Idempotent: re-running only re-checks the pinned install.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-dbos"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet 'dbos==3.4.*'
"$VENV/bin/python" -c 'import importlib.metadata as m; print("dbos", m.version("dbos"))'
