#!/usr/bin/env bash
# Installs the demo's dependencies: the npm packages of the Node services
# (demo/node_modules, from package-lock.json) and the Python packages of the
# Python services (a venv in demo/.venv, from requirements.txt).
#
# Env: PYTHON (python3) is the interpreter the venv is made from.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"

echo "== npm packages (demo/node_modules)"
npm ci --no-audit --no-fund --loglevel=error

echo "== python packages (demo/.venv)"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

echo "== done: run the demo with demo/run.sh"
