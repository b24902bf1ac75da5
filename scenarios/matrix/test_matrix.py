"""The scenario matrix: fault kinds x job kinds x dist task on/off.

Job kinds: ADD INDEX with the ingest backfill, ADD INDEX with the txn backfill
(``tidb_ddl_enable_fast_reorg=OFF``; DXF off only -- with DXF on TiDB v8.1+ refuses it,
8200), and IMPORT INTO. The txn cells are the ones a cluster without TiKV's import
service can run (this repository's real-binary cluster, tests/realbin).

Every cell is an ordinary pytest test written with the plugin's public API — the
``fault`` and ``workload`` markers declare what happens, the ``tidb`` fixture submits
the job, ``assert_job_converges`` judges it — so the matrix doubles as the example of
hand-written HA tests. A PR gate runs the ``smoke`` subset::

    pytest scenarios/matrix -m smoke --tidb-version v8.5.7 --ha-time-scale 0.1

and a nightly job the whole matrix. Durations are case time: ``--ha-time-scale``
multiplies them (and the timeouts below).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_tidb_ha import assert_job_converges

#: Every schedule follows the cell's job: it starts when the job is first seen
#: ``running`` (``when:``), not at a clock time. A clock schedule with a QA-style
#: warm-up outlives a job on a table of thousands of rows -- real TiDB finishes such an
#: ADD INDEX in seconds -- and then the cell tests nothing under faults (the plugin
#: fails such a run: no window applied).
JOB_RUNNING = {"job": 1, "state": "running"}
#: One schedule per fault kind, shaped like the QA cases (windows, period, heal).
FAULTS: dict[str, pytest.MarkDecorator] = {
    "tikv-partition": pytest.mark.fault(
        "network_partition", selector="tikv(random)_to_all", when=JOB_RUNNING,
        warmup="1s", duration="1m", period="2m", total="4m"),
    "pd-leader-partition": pytest.mark.fault(
        "network_partition", selector="pdleader_to_pdfollower(all)", when=JOB_RUNNING,
        warmup="1s", duration="1m", period="2m", total="4m"),
    "ddl-owner-kill": pytest.mark.fault(
        "kill", selector="tidb(ddl_owner)", when=JOB_RUNNING, warmup="1s", duration="1m"),
    "pd-leader-io-delay": pytest.mark.fault(
        "io_delay", selector="pdleader", latency="1s", when=JOB_RUNNING, warmup="1s",
        duration="1m"),
    "tikv-network-delay": pytest.mark.fault(
        "network_delay", selector="tikv(random)", latency="200ms", when=JOB_RUNNING,
        warmup="1s", duration="1m"),
}
JOB_KINDS = ("add_index", "add_index_txn", "import_into")
#: The PR-gate subset: one network fault and one node fault, one cell per job kind.
SMOKE = {("tikv-partition", "add_index", True), ("ddl-owner-kill", "import_into", True)}
#: Case-time deadline for each job (scaled like every other duration).
JOB_TIMEOUT = 30 * 60


def cells() -> Iterator[Any]:
    for fault, mark in FAULTS.items():
        for job_kind in JOB_KINDS:
            for dist_task in (True, False):
                if job_kind == "add_index_txn" and dist_task:
                    continue
                marks = [mark]
                if (fault, job_kind, dist_task) in SMOKE:
                    marks.append(pytest.mark.smoke)
                cell = f"{fault}-{job_kind}-dist-{'on' if dist_task else 'off'}"
                yield pytest.param(job_kind, dist_task, marks=marks, id=cell)


@pytest.mark.workload("sysbench", tables=2, table_size=10_000, threads=4)
@pytest.mark.parametrize(("job_kind", "dist_task"), list(cells()))
def test_job_converges_under_fault(tidb: Any, ha_workload: Any, nemesis: Any,
                                   job_kind: str, dist_task: bool) -> None:
    if job_kind in ("add_index", "add_index_txn"):
        job = tidb.add_index("sbtest1", "c", dist_task=dist_task,
                             job_type="txn" if job_kind == "add_index_txn" else "ingest",
                             admin_check=True, count_check=True, timeout=JOB_TIMEOUT)
    else:
        job = tidb.import_into("user_data", generate_rows=200_000, files=2,
                               dist_task=dist_task, timeout=JOB_TIMEOUT)
    assert_job_converges(job, timeout=JOB_TIMEOUT)
