#!/usr/bin/env bash
# Set everything up and start the platform with the example models deployed.
# Usage: bash scripts/quickstart.sh [extra `modelplane up` flags, e.g. --local or --port 9000]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "installing modelplane and the examples' dependencies (scikit-learn, pillow)…"
.venv/bin/python -m pip install --quiet -e ".[examples]"
exec .venv/bin/modelplane up --examples examples "$@"
