#!/usr/bin/env bash
# The README's test command: set-up, then every test (unit, pytester, stand-in,
# Docker integration), then the real-binary tests (tests/realbin, --realbin).
# .ci/run calls exactly this.
#
# The real-binary image (real tidb-server and pd-server built from Go modules,
# tests/realbin/build.sh) builds in the background at the lowest CPU priority while
# the main suite runs: cold that is a 10-25 minute Go build, warm it relinks in about
# a minute, current it takes seconds; its time is printed. Go's module and build
# caches stay where Go keeps them, so a later run on this machine reuses them.
# TIDB_HA_SKIP_REALBIN=1 leaves the real-binary stage out (it says so).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

realbin=1
[ "${TIDB_HA_SKIP_REALBIN:-}" = 1 ] && realbin=0
build_log=$(mktemp "${TMPDIR:-/tmp}/tidb-realbin-build.XXXXXX.log")
build_pid=
if [ "$realbin" = 1 ]; then
  # Started as soon as set-up has built the stand-in base image it starts from, so a cold
  # build has the test deps' install and lint as head start too. Its own process group, so
  # an interrupted run stops the go build with it; it writes when it ended (its own time).
  build_started=$(date +%s)
  REALBIN_NICE=19 setsid nice -n 19 bash -c \
    'bash tests/realbin/build.sh >"$1.ref" 2>"$1"; rc=$?; date +%s >"$1.end"; exit $rc' \
    _ "$build_log" &
  build_pid=$!
fi
trap '[ -n "$build_pid" ] && kill -- "-$build_pid" 2>/dev/null; rm -f "$build_log" "$build_log.ref" "$build_log.end"' EXIT

bash scripts/ensure-test-deps.sh
# Lint and types first: seconds, and a red line here needs no cluster to explain.
# ruff, mypy strict and lint-imports (the layers contract): scripts/lint.py
.venv/bin/python scripts/lint.py

status=0
# One stage: its exit status joins the run's; 5 (no test selected, e.g. a -k that names only
# tests of another stage) is not a failure.
stage() { local rc=0; "$@" || rc=$?; [ "$rc" = 5 ] && rc=0; [ "$rc" = 0 ] || status=$rc; }
# Tests without containers (unit, pytester, packaging) on both cores: CPU-bound and
# free of timing, so sharing the machine between two workers costs them nothing.
stage .venv/bin/python -m pytest tests -m "not realbin and not docker" -n 2 -p no:cacheprovider \
  -q -ra --timeout=900 "$@"
# Tests with stand-in clusters one at a time: the stand-in is Python on 2 cores, and its
# scaled timers must not race another cluster for the CPU.
stage .venv/bin/python -m pytest tests -m "docker and not realbin" -p no:cacheprovider -q -ra \
  --timeout=900 --durations=30 "$@"

if [ "$realbin" = 0 ]; then
  echo "test.sh: real-binary tests skipped (TIDB_HA_SKIP_REALBIN=1)"
  exit "$status"
fi
build_status=0
wait "$build_pid" || build_status=$?
build_pid=
build_ended=$(cat "$build_log.end" 2>/dev/null || date +%s)
echo "test.sh: real-binary image build: exit $build_status, $(( build_ended - build_started ))s" \
  "(in the background of the main suite); its log:"
grep -v '^DEPRECATED\|BuildKit\|environment-variable\|^ *$' "$build_log" | sed 's/^/  /'
[ "$build_status" = 0 ] || exit 1
# Real-binary tests one at a time: two workers were measured no faster (each starts its own
# real 3/1/2 cluster on the same two cores).
stage .venv/bin/python -m pytest tests/realbin -m realbin --realbin -p no:cacheprovider -q -ra \
  --timeout=1800 --durations=15 "$@"
exit "$status"
