"""Pure decisions of the TiDB role's DDL engine (no Docker): ADMIN CANCEL DDL JOBS' answers
and job row, ADMIN SHOW DDL JOBS' JOB_TYPE / COMMENTS by release."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from common.versions import Surface
from tidb.ddl import DDL, job_comments, job_type_text


class Meta:
    """The job table: documents with a revision, compare-and-swap like etcd."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[Any, int]] = {}
        self.rev = 0

    def put(self, name: str, obj: Any) -> None:
        self.rev += 1
        self.docs[name] = (copy.deepcopy(obj), self.rev)

    def get(self, name: str) -> tuple[Any, int]:
        obj, rev = self.docs.get(name, (None, 0))
        return copy.deepcopy(obj), rev

    def cas(self, name: str, obj: Any, mod_rev: int, **_: Any) -> bool:
        if self.docs.get(name, (None, 0))[1] != mod_rev:
            return False
        self.put(name, obj)
        return True


class Node:
    def __init__(self) -> None:
        self.meta = Meta()


def job(job_id: int, jtype: str, state: str, schema_state: str) -> dict[str, Any]:
    return {"id": job_id, "type": jtype, "state": state, "schema_state": schema_state}


def results(ddl: DDL, ids: list[int]) -> dict[int, str]:
    return {row[0]: row[1] for row in ddl.cancel_jobs(ids).rows}


def test_cancel_marks_the_row_cancelling_and_answers_as_tidb() -> None:
    node = Node()
    jobs = {
        1: job(1, "add index", "running", "write reorganization"),
        2: job(2, "add index", "queueing", "none"),
        3: job(3, "add index", "done", "public"),
        4: job(4, "add index", "rollingback", "delete only"),
        5: job(5, "add index", "cancelling", "write reorganization"),
        6: job(6, "drop index", "running", "write only"),
        7: job(7, "drop index", "queueing", "public"),
    }
    for job_id, doc in jobs.items():
        node.meta.put(f"ddl/jobs/{job_id:020d}", doc)
    node.meta.put(f"ddl/history/{8:020d}", job(8, "add index", "synced", "public"))
    ddl = DDL(node)  # type: ignore[arg-type]
    got = results(ddl, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert got == {
        1: "successful",
        2: "successful",
        3: "error: [ddl:8225]This job:3 is finished, so can't be cancelled",
        4: "successful",
        5: "successful",
        6: "error: [ddl:8226]This job:6 is almost finished, can't be cancelled now",
        7: "successful",
        8: "error: [ddl:8224]DDL Job:8 not found",  # finished: in history, not in the job table
        9: "error: [ddl:8224]DDL Job:9 not found",
    }
    states = {i: node.meta.get(f"ddl/jobs/{i:020d}")[0]["state"] for i in jobs}
    assert states == {1: "cancelling", 2: "cancelling", 3: "done", 4: "rollingback",
                      5: "cancelling", 6: "running", 7: "cancelling"}


@pytest.mark.parametrize(("version", "job_type", "comments"), [
    ("v7.5.0", "add index /* ingest */", ""),
    ("v8.1.0", "add index /* ingest */", ""),
    ("v8.5.7", "add index", "ingest, DXF, batch_size=64"),
])
def test_job_type_and_comments_by_release(version: str, job_type: str, comments: str) -> None:
    running = {"type": "add index", "reorg_tp": "ingest", "dist": True, "batch_size": 64,
               "concurrency": 4}
    surface = Surface(version)
    assert job_type_text(running, surface) == job_type
    if surface.show_ddl_jobs_comments:
        assert job_comments(running) == comments
    queued = {**running, "reorg_tp": None}
    assert job_type_text(queued, surface) == "add index"
    assert job_comments({"type": "drop index"}) == ""
