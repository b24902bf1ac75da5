"""Fixture helpers: which workloads an item has, connection spreading, group stop."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tidb_ha.scenario.model import Case, Duration, Workload
from pytest_tidb_ha.stash import CASE_KEY
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload.connections import round_robin_factory
from pytest_tidb_ha.workload.errors import WorkloadError
from pytest_tidb_ha.workload.fixtures import workloads_of
from pytest_tidb_ha.workload.group import WorkloadGroup


class Item:
    def __init__(self, marker: Any = None) -> None:
        self.stash = pytest.Stash()
        self.nodeid = "test_x.py::test_y"
        self._marker = marker

    def get_closest_marker(self, name: str) -> Any:
        return self._marker if name == "workload" else None


def test_workloads_come_from_the_case_when_there_is_one() -> None:
    item = Item(marker=pytest.mark.workload("sysbench", tables=9).mark)
    case = Case(name="c", warmup=Duration(0.0, "0s"), workloads=(Workload(tables=3),))
    item.stash[CASE_KEY] = case
    assert workloads_of(item) == (Workload(tables=3),)


def test_workloads_fall_back_to_the_marker() -> None:
    item = Item(marker=pytest.mark.workload("sysbench", tables=9, table_size=50, threads=2,
                                            ignore_errors="1213,9007").mark)
    [w] = workloads_of(item)
    assert (w.tables, w.table_size, w.threads, w.ignore_errors) == (9, 50, 2, (1213, 9007))
    assert workloads_of(Item()) == ()


class Client:
    def __init__(self, nodes: list[str], down: set[str] = set()) -> None:  # noqa: B006
        self.endpoints = {n: ("127.0.0.1", 4000 + i) for i, n in enumerate(nodes)}
        self.down = down
        self.calls: list[str | None] = []

    def connect(self, node: str | None = None, read_timeout: float | None = None) -> str:
        assert read_timeout == 5.0
        self.calls.append(node)
        if node in self.down:
            raise OSError("refused")
        return node or "any"


def test_round_robin_spreads_new_connections_over_tidbs() -> None:
    client = Client(["tidb-1", "tidb-0"])
    factory = round_robin_factory(client)
    got: list[object] = [factory() for _ in range(4)]  # the fake's "connections" are node names
    assert got == ["tidb-0", "tidb-1", "tidb-0", "tidb-1"]


def test_round_robin_fails_over_when_a_node_is_down() -> None:
    client = Client(["tidb-0", "tidb-1"], down={"tidb-1"})
    factory = round_robin_factory(client)
    got: list[object] = [factory() for _ in range(2)]
    assert got == ["tidb-0", "any"]


def test_single_tidb_uses_the_client_failover_directly() -> None:
    client = Client(["tidb-0"])
    got: object = round_robin_factory(client)()
    assert got == "any"


class FakeSysbench:
    def __init__(self, name: str, fail_start: bool = False, fail_stop: bool = False) -> None:
        self.name, self.fail_start, self.fail_stop = name, fail_start, fail_stop
        self.log: list[str] = []

    def prepare(self) -> None:
        self.log.append("prepare")

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("cannot start")
        self.log.append("start")

    def stop(self) -> None:
        self.log.append("stop")
        if self.fail_stop:
            raise WorkloadError(f"{self.name} failed", 1105)

    def cleanup(self) -> None:
        self.log.append("cleanup")


def group_of(*members: FakeSysbench, cleanup: bool = False) -> WorkloadGroup:
    g = WorkloadGroup((), lambda: None, Timeline(), cleanup=cleanup)  # type: ignore[return-value]
    g.members = members  # type: ignore[assignment]
    return g


def test_group_stops_every_workload_and_raises_the_first_error() -> None:
    a, b = FakeSysbench("a", fail_stop=True), FakeSysbench("b", fail_stop=True)
    g = group_of(a, b, cleanup=True)
    g.start()
    with pytest.raises(WorkloadError, match="a failed"):
        g.stop()
    assert a.log == b.log == ["prepare", "start", "stop", "cleanup"]


def test_group_start_failure_stops_the_started_ones() -> None:
    a, b = FakeSysbench("a"), FakeSysbench("b", fail_start=True)
    g = group_of(a, b)
    with pytest.raises(RuntimeError, match="cannot start"):
        g.start()
    assert a.log == ["prepare", "start", "stop"]
    assert b.log == ["prepare"]


def test_group_keeps_the_body_exception_over_a_workload_error() -> None:
    a = FakeSysbench("a", fail_stop=True)
    with pytest.raises(KeyError), group_of(a):
        raise KeyError("body")
    assert a.log[-1] == "stop"
