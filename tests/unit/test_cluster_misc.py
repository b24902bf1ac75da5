"""Reaper decisions, attach parsing, per-test database names, the pool's bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tidb_ha.cluster import pool as pool_mod
from pytest_tidb_ha.cluster.attach import AttachError, attach_cluster, parse_dsn
from pytest_tidb_ha.cluster.fixtures import database_name
from pytest_tidb_ha.cluster.handle import Cluster
from pytest_tidb_ha.cluster.lifecycle import ClusterStartError, DockerUnavailable
from pytest_tidb_ha.cluster.pool import ClusterPool
from pytest_tidb_ha.cluster.reaper import is_stale, pid_alive
from pytest_tidb_ha.cluster.specs import ClusterSettings
from pytest_tidb_ha.scenario.model import Topology

OURS = {"org.pytest-tidb-ha.plugin": "pytest-tidb-ha", "org.pytest-tidb-ha.host": "box",
        "org.pytest-tidb-ha.pid": "123"}


@pytest.mark.parametrize(
    ("labels", "alive", "stale"),
    [
        (OURS, False, True),
        (OURS, True, False),  # owner still running (another session / xdist worker)
        ({**OURS, "org.pytest-tidb-ha.host": "other"}, False, False),  # cannot tell: leave it
        ({**OURS, "org.pytest-tidb-ha.keep": "true"}, False, False),  # --ha-keep-cluster
        ({**OURS, "org.pytest-tidb-ha.plugin": "x"}, False, False),
        ({**OURS, "org.pytest-tidb-ha.pid": "nope"}, False, False),
        ({}, False, False),
    ],
)
def test_is_stale(labels: dict[str, str], alive: bool, stale: bool) -> None:
    assert is_stale(labels, host="box", alive=lambda pid: alive) is stale


def test_pid_alive_for_this_process_and_a_dead_one() -> None:
    import os
    import subprocess
    import sys

    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)


def test_parse_dsn_and_attach() -> None:
    assert parse_dsn("mysql://root@127.0.0.1:4000") == ("127.0.0.1", 4000, "root", "", None)
    assert parse_dsn("mysql://u:p%40ss@db.example:3306/app") == ("db.example", 3306, "u", "p@ss", "app")
    assert parse_dsn("mysql://h") == ("h", 4000, "root", "", None)
    with pytest.raises(AttachError, match="mysql://"):
        parse_dsn("postgres://h")
    cluster = attach_cluster("mysql://u:pw@10.1.2.3:4001/app", "http://10.1.2.4:2379")
    assert not cluster.can_control_nodes
    assert cluster.sql_endpoints() == {"tidb-0": ("10.1.2.3", 4001)}
    assert cluster.status_urls("tidb") == {"tidb-0": "http://10.1.2.3:10080"}
    assert cluster.pd_urls() == ["http://10.1.2.4:2379"]
    assert cluster.dsn() == "mysql://u:pw@10.1.2.3:4001/app"
    assert cluster.logs("tidb-0") == ""
    odd = attach_cluster("mysql://u%40x:p%2Fw%3A@h:1/d")
    assert parse_dsn(odd.dsn())[2:] == ("u@x", "p/w:", "d")  # round trip keeps odd characters
    with pytest.raises(RuntimeError, match="attached"):
        cluster.container("tidb-0")


def test_database_names_are_valid_unique_and_readable() -> None:
    a = database_name("tests/test_x.py::test_add_index[kill-tidb]")
    b = database_name("tests/test_y.py::test_add_index[kill-tidb]")
    assert a != b
    assert a.startswith("t_test_add_index_kill_tidb_")
    long = database_name("t.py::" + "x" * 300)
    assert len(long) <= 64
    assert all(c.isalnum() or c == "_" for c in long)


class FakeStarts:
    """Replaces start/stop/wait so the pool's bookkeeping is tested without Docker."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.broken: set[str] = set()
        monkeypatch.setattr(pool_mod, "start_cluster", self.start)
        monkeypatch.setattr(pool_mod, "stop_cluster", self.stop)
        monkeypatch.setattr(pool_mod, "wait_ready", self.wait)
        monkeypatch.setattr(ClusterPool, "_revive", lambda pool, c: self.wait(c))

    def start(self, settings: ClusterSettings, docker: Any) -> Cluster:
        self.started.append(settings.cluster_name)
        return Cluster(settings.cluster_name, [], settings=settings)

    def stop(self, cluster: Cluster, keep: bool = False) -> None:
        self.stopped.append(cluster.name)

    def wait(self, cluster: Cluster, **_: Any) -> None:
        if cluster.name in self.broken:
            raise ClusterStartError(f"{cluster.name} broken")


def make_pool(max_clusters: int = 2) -> ClusterPool:
    base = ClusterSettings(run_id="r", pid=1, host="h")
    return ClusterPool(base, docker_factory=lambda: object(), max_clusters=max_clusters,  # type: ignore[return-value]
                       reap=False)


def test_pool_reuses_per_key_and_evicts_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStarts(monkeypatch)
    pool = make_pool(max_clusters=2)
    small, big, mid = (pool.settings_for(Topology(*t)) for t in ((1, 1, 1), (3, 3, 2), (1, 1, 2)))
    assert pool.get(small) is pool.get(small)
    pool.get(big)
    assert len(fake.started) == 2
    pool.get(small)  # touch: big is now the least recently used
    pool.get(mid)
    assert fake.stopped == [big.cluster_name]
    pool.close()
    assert sorted(fake.stopped) == sorted([big.cluster_name, small.cluster_name, mid.cluster_name])
    assert pool.clusters == []


def test_pool_replaces_a_cluster_that_does_not_recover(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStarts(monkeypatch)
    pool = make_pool()
    s = pool.settings_for(Topology(1, 1, 1))
    first = pool.get(s)
    fake.broken.add(s.cluster_name)
    second = pool.get(s)
    assert first is not second
    assert fake.stopped == [s.cluster_name]
    assert fake.started == [s.cluster_name, s.cluster_name]


def test_pool_remembers_that_there_is_no_engine() -> None:
    calls = []

    def no_engine() -> Any:
        calls.append(1)
        raise DockerUnavailable("no Docker engine answers at x")

    pool = ClusterPool(ClusterSettings(run_id="r"), docker_factory=no_engine, reap=False)
    for _ in range(2):
        with pytest.raises(DockerUnavailable):
            pool.get(pool.settings_for(Topology()))
    assert calls == [1]  # asked once per session, not once per test


def test_requested_topology_follows_the_case_needs() -> None:
    from types import SimpleNamespace

    from pytest_tidb_ha.cluster.fixtures import requested_topology
    from pytest_tidb_ha.scenario.markers import case_from_markers
    from pytest_tidb_ha.stash import CASE_KEY

    plain = SimpleNamespace(stash=pytest.Stash())
    assert requested_topology(plain, None) == Topology(1, 1, 1)
    assert requested_topology(plain, Topology(1, 3, 1)) == Topology(1, 3, 1)

    killing_owner = SimpleNamespace(stash=pytest.Stash())
    killing_owner.stash[CASE_KEY] = case_from_markers(
        "t.py::t", "t", faults=[(("kill",), {"selector": "tidb(ddl_owner)", "warmup": "1m",
                                             "duration": "1m"})])
    got = requested_topology(killing_owner, Topology(1, 3, 1))
    assert got.tidb >= 2
    assert got.tikv == 3


class _Obj:
    def __init__(self, attrs: dict[str, Any], fail: bool = False) -> None:
        self.attrs = attrs
        self.id = attrs.get("Id", "x")
        self.removed = False
        self._fail = fail

    def remove(self, **_: Any) -> None:
        if self._fail:
            raise RuntimeError("busy")
        self.removed = True


class _Collection:
    def __init__(self, objs: list[_Obj]) -> None:
        self.objs = objs

    def list(self, **_: Any) -> list[_Obj]:
        return self.objs

    def get(self, name: str) -> _Obj:
        return next(o for o in self.objs if o.attrs.get("Name") == name)


def test_reap_stale_removes_only_dead_owners_and_keeps_going(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from pytest_tidb_ha.cluster import reaper

    dead = {**OURS, "org.pytest-tidb-ha.pid": "1"}
    live = {**OURS, "org.pytest-tidb-ha.pid": "2"}
    stuck = _Obj({"Names": ["/stuck"], "Labels": dead}, fail=True)
    gone = _Obj({"Names": ["/gone"], "Labels": dead})
    mine = _Obj({"Names": ["/mine"], "Labels": live})
    net = _Obj({"Name": "n1", "Labels": dead})
    vol = _Obj({"Name": "v1", "Labels": dead})
    docker = SimpleNamespace(containers=_Collection([stuck, gone, mine]),
                             networks=_Collection([net]), volumes=_Collection([vol]))
    monkeypatch.setattr(reaper, "remove_network", lambda d, name: None)
    monkeypatch.setattr(reaper, "remove_volume", lambda d, name: None)
    done = reaper.reap_stale(docker, host="box", alive=lambda pid: pid == 2)
    assert done.containers == ["gone"]
    assert gone.removed
    assert not mine.removed
    assert done.networks == ["n1"]
    assert done.volumes == ["v1"]
    assert str(done) == "1 container(s), 1 network(s), 1 volume(s)"
