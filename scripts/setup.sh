#!/usr/bin/env bash
# One-time (idempotent) set-up shared by the README's two commands and CI:
# a venv with the package, a running Docker engine, and the stand-in images.
# Safe to run again: every step skips work that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.tidb-ha-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing pytest-tidb-ha (editable) and dev tools"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

bash scripts/ensure-docker.sh
bash tests/standin/build.sh >/dev/null
echo "setup: ready (stand-in image $(docker images -q tidb-standin:latest | head -n1))"
