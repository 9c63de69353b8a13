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
# Replicas run inside bubblewrap (docs/security.md); without it only --local mode starts.
if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing bubblewrap (the replicas' sandbox)…"
    apt-get update -qq && apt-get install -y -qq bubblewrap
  elif [[ " $* " != *" --local "* ]]; then
    echo "bubblewrap (bwrap) is needed to confine replicas: sudo apt-get install bubblewrap" >&2
    echo "(or start single-user local mode, unconfined: bash scripts/quickstart.sh --local)" >&2
    exit 1
  fi
fi
exec .venv/bin/modelplane up --examples examples "$@"
