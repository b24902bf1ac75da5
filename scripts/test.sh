#!/usr/bin/env bash
# The README's test command: set-up, then every test (unit, pytester, stand-in,
# Docker integration). .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure-test-deps.sh
exec .venv/bin/python -m pytest tests -p no:cacheprovider -q -ra --timeout=900 "$@"
