"""The Timeline's vocabulary: every event kind and the field names that carry a kind.

Layers write events and the report reads them without knowing who wrote what,
so the words must live in one place: a writer spelling ``kind`` where a reader
looks for ``fault_kind`` gives an empty fault kind in the operator log and in
``faults.json`` (the defect this module exists to prevent). Event payloads are
described in docs/contracts.md.

The fault or job kind rides beside the event kind under :data:`FAULT_KIND` /
:data:`JOB_KIND`: a field named ``kind`` would shadow the event's own kind in
:meth:`~pytest_tidb_ha.timeline.Event.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping

# -- field names -----------------------------------------------------------------
#: The fault kind (``network_partition``, ``kill``, ...) on ``fault.*``/``nemesis.*`` events.
FAULT_KIND = "fault_kind"
#: The job kind (``add_index``, ``import_into``) on ``job.*`` events.
JOB_KIND = "job_kind"

# -- faults (the nemesis) --------------------------------------------------------------
FAULT_INJECT = "fault.inject"  # before anything is touched; a window opens here
FAULT_APPLIED = "fault.applied"
FAULT_HEALED = "fault.healed"  # a window closes here
FAULT_ERROR = "fault.error"  # phase: resolve | apply | heal | reapply
FAULT_REAPPLIED = "fault.reapplied"
#: The effect of an applied fault, measured from inside the cluster (ok: true/false/null).
FAULT_VERIFIED = "fault.verified"
#: A ``when:`` trigger fired: which fault spec, on which job observation.
FAULT_TRIGGER = "fault.trigger"
FAULT_EVENTS = (FAULT_INJECT, FAULT_APPLIED, FAULT_HEALED, FAULT_ERROR, FAULT_REAPPLIED,
                FAULT_VERIFIED, FAULT_TRIGGER)

NEMESIS_START = "nemesis.start"
NEMESIS_STOP = "nemesis.stop"
NEMESIS_SKIP = "nemesis.skip"
NEMESIS_REAPED = "nemesis.reaped"
#: Written once at stop: planned/applied/healed counts and the problems (see faults.outcome).
NEMESIS_SUMMARY = "nemesis.summary"

# -- jobs (the watcher) ---------------------------------------------------------------
JOB_SUBMIT = "job.submit"
JOB_STATE = "job.state"
JOB_CANCEL = "job.cancel"
JOB_VERDICT = "job.verdict"
JOB_EVENTS = (JOB_SUBMIT, JOB_STATE, JOB_CANCEL, JOB_VERDICT)
JOBS_SETTING = "jobs.setting"
#: The recovery floors a run's verdict windows were bounded by (see scenario.floors).
JOBS_FLOORS = "jobs.floors"

# -- workload ---------------------------------------------------------------------------
WORKLOAD_METRICS = "workload.metrics"
WORKLOAD_ERROR = "workload.error"
#: The sysbench binary crashed in its reconnect path and was started again (see
#: workload.driver_sysbench): reason, restarts (so far), output (its last lines).
WORKLOAD_RESTART = "workload.restart"


def kind_of(data: Mapping[str, object]) -> str:
    """The fault or job kind an event carries ('' when it carries none)."""
    return str(data.get(FAULT_KIND) or data.get(JOB_KIND) or "")
