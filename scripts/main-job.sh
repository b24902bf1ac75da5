#!/usr/bin/env bash
# The README's main job: the seed scenarios end to end against the stand-in
# cluster (the only cluster a machine without a container registry can have),
# time-scaled, printing the verdict summary and leaving artifacts.
#
#   bash scripts/main-job.sh                                  # fixed stand-in: all seeds converge
#   bash scripts/main-job.sh --standin-bugs 48303,48546,46735 # bug modes: each seed fails with its verdict
#
# Where Docker Hub is reachable, the same plugin runs the same cases on the real
# images:  pytest scenarios/seeds --tidb-version v8.5.7 --ha-time-scale 0.05
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest scenarios/seeds --standin \
  --ha-time-scale "${HA_TIME_SCALE:-0.1}" \
  --ha-workload-scale "${HA_WORKLOAD_SCALE:-0.00002}" \
  --ha-artifacts "${HA_ARTIFACTS:-ha-artifacts}" \
  -p no:cacheprovider -q -rA "$@"
