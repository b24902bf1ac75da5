"""How long a case is expected to take, in wall seconds: the planner's estimate (pure).

``--ha-shard`` balances shards by it and the dry-run plan prints it. It is a
*plan*, read from the case alone, never a measurement: what matters for
balancing is that a 30-minute schedule weighs ten times a 3-minute one, and that
YAML cases and marker tests are weighed by the same rule.

    estimate = setup + max(end of the fault schedule, end of the jobs)

* **setup** (wall time, does not scale): :data:`SETUP_WALL` for the database,
  session settings and connections, plus loading the workload's rows at
  :data:`PREPARE_ROWS_PER_S` and writing generated IMPORT INTO rows at
  :data:`GENERATE_ROWS_PER_S` (both after ``--ha-workload-scale``);
* **fault schedule**: the end of its last window, scaled by ``--ha-time-scale``;
* **jobs**: they start at ``warmUpTime`` and each run takes
  :data:`JOB_RUN` of case time (never more than its own ``timeout``), scaled,
  but at least :data:`MIN_JOB_WALL` wall seconds (SQL round trips and recovery
  floors do not shrink with the time scale). Entries run one after another,
  as the runner runs them. A marker test submits its jobs in code, which the
  planner cannot see: it counts as one run.

The cluster start is left out: it is paid once per cluster and shard, not per
test (the shard plan counts clusters separately).
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Case
from .sizing import scaled_size

#: Wall seconds every case spends outside its schedule (database, settings, connections).
SETUP_WALL = 5.0
#: Workload rows loaded per wall second by ``prepare`` (a guess at batched inserts).
PREPARE_ROWS_PER_S = 50_000.0
#: Generated IMPORT INTO CSV rows written per wall second.
GENERATE_ROWS_PER_S = 200_000.0
#: Case seconds one job run is assumed to take (capped by the job's own timeout).
JOB_RUN = 5 * 60.0
#: Wall-clock floor of one job run.
MIN_JOB_WALL = 10.0
#: Estimate of a test that uses no cluster at all (it still takes a moment).
PLAIN_TEST = 1.0


@dataclass(frozen=True)
class Estimate:
    """Wall seconds: ``setup`` plus the longer of the fault schedule and the jobs."""

    setup: float
    faults: float  # end of the last fault window, scaled
    jobs: float  # end of the last job run, scaled (with the wall floor)

    @property
    def seconds(self) -> float:
        return self.setup + max(self.faults, self.jobs)


def _job_run(timeout: float, scale: float) -> float:
    return max(min(timeout, JOB_RUN) * scale, MIN_JOB_WALL)


def estimate_case(case: Case, *, time_scale: float = 1.0,
                  workload_scale: float = 1.0) -> Estimate:
    """The planner's estimate of ``case`` at these scales (see the module doc)."""
    setup = SETUP_WALL
    for w in case.workloads:
        setup += scaled_size(w.tables, w.table_size, workload_scale).rows / PREPARE_ROWS_PER_S
    faults = max((end for f in case.faults for _, end in f.schedule.windows(time_scale)),
                 default=0.0)
    runs: list[float] = []
    for job in case.jobs:
        runs += [_job_run(job.timeout.seconds, time_scale)] * job.times
        generate = getattr(job, "generate", None)
        if generate is not None:
            setup += generate.scaled_rows(workload_scale) / GENERATE_ROWS_PER_S
    if not case.jobs:  # a marker test: its jobs are in code, count one run
        runs.append(_job_run(JOB_RUN, time_scale))
    jobs = case.warmup.scaled(time_scale) + sum(runs)
    return Estimate(setup=setup, faults=faults, jobs=jobs)
