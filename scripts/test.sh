#!/usr/bin/env bash
# Set up and run the whole test suite. Extra arguments go to pytest (e.g. -k name, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
# The official DEEPaaS, for the compatibility tests. It pins Werkzeug<3, which it never imports;
# moto's S3 server (flask) needs Werkzeug 3, so that pin is overridden on purpose.
.venv/bin/python -m pip install --quiet "deepaas==2.6.0"
.venv/bin/python -m pip install --quiet "werkzeug>=3.1"
# jq and GNU coreutils: the tools the OSCAR example-style test services call (as their images would).
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq >/dev/null; }
# A real PostgreSQL for the store suite; the fixture runs initdb into a temp folder (no service).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "note: PostgreSQL is not installed; its tests will be skipped (apt-get install postgresql)"
  fi
fi
# bubblewrap confines replicas (docs/security.md); the sandbox tests use the real one.
command -v bwrap >/dev/null || { apt-get update -qq && apt-get install -y -qq bubblewrap; }
# Debian's Chromium for the dashboard's browser tests (Playwright drives it; no browser download).
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || {
  echo "installing Debian's chromium for the dashboard tests…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
echo "lint and types…"
.venv/bin/ruff check src tests
.venv/bin/mypy
# Replicas started by a test must never outlive it; a fresh data dir per run.
export MODELPLANE_DATA_DIR="$(mktemp -d)"
trap 'rm -rf "$MODELPLANE_DATA_DIR"' EXIT
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
