#!/usr/bin/env bash
# The README's main job: the seed scenarios end to end against the stand-in
# cluster (the only cluster a machine without a container registry can have),
# time-scaled, printing the verdict summary and leaving artifacts.
#
#   bash scripts/main-job.sh                                  # fixed stand-in: all seeds converge
#   bash scripts/main-job.sh --standin-bugs 48303,48546,46735 # bug modes: each seed fails with its verdict
#
# The fixed stand-in runs the seed files verbatim (scenarios/seeds). With --standin-bugs
# it runs their triggered variants (scenarios/triggered: each seed plus a `when:` job-state
# trigger, so each bug's trigger happens on purpose and its verdict comes from the first
# run), at time scale 0.05 and workload scale 0.0002 (14000 rows in the ADD INDEX table:
# the backfill still has batches to write when the triggered partition lands).
#
# Where Docker Hub is reachable, the same plugin runs the same cases on the real
# images:  pytest scenarios/seeds --tidb-version v8.5.7 --ha-time-scale 0.05
set -euo pipefail
cd "$(dirname "$0")/.."
cases=scenarios/seeds time_scale=0.1 workload_scale=0.00002
for arg in "$@"; do
  case "$arg" in
    --standin-bugs|--standin-bugs=?*) cases=scenarios/triggered time_scale=0.05 workload_scale=0.0002 ;;
  esac
done
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$cases" --standin \
  --ha-time-scale "${HA_TIME_SCALE:-$time_scale}" \
  --ha-workload-scale "${HA_WORKLOAD_SCALE:-$workload_scale}" \
  --ha-artifacts "${HA_ARTIFACTS:-ha-artifacts}" \
  -p no:cacheprovider -q -rA "$@"
