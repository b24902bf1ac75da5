#!/usr/bin/env bash
# The README's test command: set-up, then every test (unit, pytester, stand-in,
# Docker integration). .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure-test-deps.sh
# Lint and types first: seconds, and a red line here needs no cluster to explain.
.venv/bin/ruff check src tests bench scenarios conftest.py
.venv/bin/mypy
exec .venv/bin/python -m pytest tests -p no:cacheprovider -q -ra --timeout=900 "$@"
