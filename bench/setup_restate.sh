#!/usr/bin/env bash
# Create (if missing) the benchmark-only environment bench/.venv-restate and install Restate in
# it: the server (npm package @restatedev/restate-server, whose platform package ships the
# `restate-server` binary) under bench/.venv-restate/npm, and a Python venv with the Restate
# Python SDK (restate-sdk), hypercorn (the HTTP/2 ASGI server the SDK's docs use) and httpx
# (the bench's client of Restate's ingress). Never the project's venv. Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV="$HERE/.venv-restate"
PYTHON="${PYTHON:-python3}"
SERVER_VERSION="${RESTATE_SERVER_VERSION:-1.7.12}"
if [ ! -x "$ENV/bin/python" ]; then
    "$PYTHON" -m venv "$ENV"
    "$ENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$ENV/bin/python" -m pip install --quiet 'restate-sdk==1.2.*' 'hypercorn>=0.17' 'httpx>=0.27'
mkdir -p "$ENV/npm"
if [ ! -x "$ENV/npm/node_modules/.bin/restate-server" ]; then
    npm install --silent --no-audit --no-fund --prefix "$ENV/npm" \
        "@restatedev/restate-server@$SERVER_VERSION"
fi
"$ENV/npm/node_modules/.bin/restate-server" --version
"$ENV/bin/python" -c 'import importlib.metadata as m; print("restate-sdk", m.version("restate-sdk"))'
