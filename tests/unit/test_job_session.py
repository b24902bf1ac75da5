"""One JobSession behind both the case runner and the ``tidb`` fixture; the ClusterLike seam."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pytest

from pytest_tidb_ha.cluster.attach import attach_cluster
from pytest_tidb_ha.cluster.handle import Cluster, Node
from pytest_tidb_ha.cluster.protocol import ClusterLike
from pytest_tidb_ha.events import JOBS_FLOORS
from pytest_tidb_ha.jobs.facade import TiDB
from pytest_tidb_ha.jobs.model import ADD_INDEX
from pytest_tidb_ha.jobs.session import JobSession, job_policy, policy_for
from pytest_tidb_ha.options import HAOptions
from pytest_tidb_ha.record import HARecord
from pytest_tidb_ha.runner import CaseRun
from pytest_tidb_ha.scenario.floors import table_timers
from pytest_tidb_ha.scenario.model import (
    AddIndexJob,
    Case,
    Duration,
    Expectation,
    FaultSpec,
    GenerateSpec,
    ImportIntoJob,
    Schedule,
)
from pytest_tidb_ha.scenario.selectors import parse_selector
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.verdicts import CONVERGED, STUCK, Verdict


@dataclass
class FakeNode:
    name: str
    component: str = "tidb"
    container_id: str | None = None
    ip: str | None = None


class FakeCluster:
    """The ClusterLike surface a session reads; no component answers over HTTP."""

    docker = None
    network_name = None
    labels: ClassVar[dict[str, str]] = {}
    can_control_nodes = False
    database = "db1"

    def __init__(self, import_dir: Path | None = None) -> None:
        self.import_dir = import_dir
        self.nodes = [FakeNode("tidb-0")]
        self.clients: list[dict[str, Any]] = []

    def client(self, **kw: Any) -> object:
        self.clients.append(kw)
        return object()

    def pd_urls(self) -> list[str]:
        return []

    def status_urls(self, component: str) -> dict[str, str]:
        return {}


def record(tmp_path: Path) -> HARecord:
    return HARecord(nodeid="t::x", timeline=Timeline(), artifacts_dir=tmp_path / "art")


def kill_case() -> Case:
    return Case(name="c", warmup=Duration(60),
                faults=(FaultSpec(kind="kill", selector=parse_selector("tidb(ddl_owner)"),
                                  schedule=Schedule(Duration(60), Duration(180))),),
                jobs=(AddIndexJob(db="db1", table="t", index_col_name="c",
                                  timeout=Duration(600)),),
                expect=Expectation(cancel_after=Duration(30)))


def test_the_real_handles_are_cluster_like() -> None:
    started = Cluster("c", [Node("tidb-0", "tidb", host_ports=MappingProxyType({4000: 1}))])
    attached = attach_cluster("mysql://root@127.0.0.1:4000/db")
    assert isinstance(started, ClusterLike)
    assert isinstance(attached, ClusterLike)
    assert attached.import_dir is None
    assert not attached.can_control_nodes
    assert not isinstance(object(), ClusterLike)


def test_runner_and_facade_wire_their_jobs_through_one_session(tmp_path: Path) -> None:
    cluster = FakeCluster()
    facade = TiDB(cluster, object(), record(tmp_path), HAOptions(time_scale=0.01))
    run = CaseRun(kill_case(), cluster, record(tmp_path), HAOptions(time_scale=0.01))
    assert isinstance(facade.session, JobSession)
    assert isinstance(run.session, JobSession)
    assert facade.watcher is facade.session.watcher
    assert run.watcher is run.session.watcher
    # the watcher's own client has short timeouts, in both
    watch_clients = [kw for kw in cluster.clients if kw.get("read_timeout") == 5]
    assert len(watch_clients) == 2


def test_timers_are_read_once_and_recorded(tmp_path: Path) -> None:
    rec = record(tmp_path)
    session = JobSession(FakeCluster(), rec, HAOptions(time_scale=0.01), kill_case())
    first = session.policy(ADD_INDEX, timeout=600)
    second = session.policy_of(kill_case().jobs[0])
    assert first.timeout == second.timeout
    floors = [e for e in rec.timeline.events() if e.kind == JOBS_FLOORS]
    assert len(floors) == 1
    assert any("not read from the cluster" in n or "did not report" in n
               for n in floors[0].data["notes"])


def test_policy_for_a_case_job_is_job_policy_with_its_own_timeout() -> None:
    case = kill_case()
    timers = table_timers(None)
    p = policy_for(case.jobs[0], case, 0.02, timers)
    q = job_policy(ADD_INDEX, case, timers, 0.02, timeout=600, cancel_after=30)
    assert p == q
    assert p.cancel_after == pytest.approx(30 * 0.02)
    assert job_policy(ADD_INDEX, case, timers, 0.02, timeout=600).cancel_after is None


def test_generated_import_data_needs_the_import_folder(tmp_path: Path) -> None:
    spec = ImportIntoJob(db="db1", table="t", source_uri="", timeout=Duration(60),
                         generate=GenerateSpec(rows=10, files=1))
    attached = JobSession(FakeCluster(), record(tmp_path), HAOptions())
    with pytest.raises(RuntimeError, match="import folder"):
        attached.import_data(spec)
    started = JobSession(FakeCluster(tmp_path / "import"), record(tmp_path), HAOptions())
    source, rows = started.import_data(spec)
    assert rows >= 10
    assert source
    assert any((tmp_path / "import").rglob("*"))


def test_diagnostics_only_for_a_verdict_that_is_not_converged(tmp_path: Path) -> None:
    rec = record(tmp_path)
    session = JobSession(FakeCluster(), rec, HAOptions())

    def verdict(name: Any) -> Verdict:
        return Verdict(job_key="add_index#1", kind=ADD_INDEX, job_id=1, verdict=name,
                       reason="r", ok=name == CONVERGED)

    session.diagnostics([verdict(CONVERGED)])
    assert not (rec.artifacts_dir / "diagnostics").exists()
    session.diagnostics([verdict(STUCK)])
    assert (rec.artifacts_dir / "diagnostics").is_dir()
