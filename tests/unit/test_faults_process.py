"""Kill and pause without a status read first: Docker's own answers decide (no Docker here).

Why: a read per window is an API round trip on the path the fault's timing is measured
on (issue 13); these fakes answer as Docker 20.10+ does, so the decisions stay right.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tidb_ha.faults.injectors import KillFault, PauseFault
from pytest_tidb_ha.faults.ledger import Tag
from pytest_tidb_ha.faults.netns import Result


class APIError(Exception):
    pass


class NotFound(Exception):
    pass


class FakeContainer:
    def __init__(self, status: str = "running") -> None:
        self.status = status
        self.calls: list[str] = []

    def reload(self) -> None:
        self.calls.append("reload")

    def kill(self, signal: str) -> None:
        self.calls.append("kill")
        if self.status == "paused":
            raise APIError("Cannot kill container: abc: Container abc is paused")
        if self.status != "running":
            raise APIError("Cannot kill container: abc: Container abc is not running")
        self.status = "exited"

    def pause(self) -> None:
        self.calls.append("pause")
        if self.status == "paused":
            raise APIError("Cannot pause container abc: container abc is already paused")
        if self.status != "running":
            raise APIError("Container abc is not running")
        self.status = "paused"

    def unpause(self) -> None:
        self.calls.append("unpause")
        if self.status != "paused":
            raise APIError("Container abc is not paused")
        self.status = "running"

    def wait(self, condition: str, timeout: int) -> dict[str, int]:
        self.calls.append("wait")
        return {"StatusCode": 137}


class FakeCtx:
    def __init__(self, container: Any) -> None:
        self.c = container
        self.scripts: list[str] = []
        self.tag = Tag("unit", 1, "abcdef", "f0.0")

    def container(self, node: str) -> Any:
        if self.c is None:
            raise NotFound(node)
        return self.c

    def exec(self, node: str, script: str, what: str, **_: Any) -> Result:
        self.scripts.append(what)
        return Result(0, "")


def test_kill_of_a_running_node_kills_and_waits_without_a_read() -> None:
    c = FakeContainer()
    fault = KillFault(FakeCtx(c), ("tikv-0",))
    fault.apply()
    assert c.calls == ["kill", "wait"]
    assert fault.killed == ["tikv-0"]


def test_kill_of_a_paused_node_unpauses_first() -> None:
    c = FakeContainer("paused")
    fault = KillFault(FakeCtx(c), ("tikv-0",))
    fault.apply()
    assert c.calls == ["kill", "unpause", "kill", "wait"]
    assert c.status == "exited"


def test_kill_of_a_stopped_node_is_not_ours() -> None:
    c = FakeContainer("exited")
    fault = KillFault(FakeCtx(c), ("tikv-0",))
    fault.apply()
    assert fault.killed == []


def test_kill_raises_what_docker_refuses_otherwise() -> None:
    class Refusing(FakeContainer):
        def kill(self, signal: str) -> None:
            raise APIError("permission denied")

    with pytest.raises(APIError, match="permission denied"):
        KillFault(FakeCtx(Refusing()), ("tikv-0",)).apply()


def test_pause_heal_of_a_node_no_longer_paused_still_clears_the_ledger() -> None:
    c = FakeContainer("running")
    ctx = FakeCtx(c)
    PauseFault(ctx, ("tidb-0",)).heal()
    assert c.calls == ["unpause"]
    assert ctx.scripts == ["ledger"]


def test_pause_heal_unpauses_and_skips_a_removed_node() -> None:
    c = FakeContainer("paused")
    PauseFault(FakeCtx(c), ("tidb-0",)).heal()
    assert c.status == "running"
    gone = FakeCtx(None)
    PauseFault(gone, ("tidb-0",)).heal()
    assert gone.scripts == []


def test_pause_writes_the_marker_then_pauses_without_a_read() -> None:
    c = FakeContainer("running")
    ctx = FakeCtx(c)
    PauseFault(ctx, ("tidb-0",)).apply()
    assert c.calls == ["pause"]
    assert c.status == "paused"
    assert ctx.scripts == ["ledger"]


def test_pause_of_a_node_paused_by_someone_else_takes_its_marker_back() -> None:
    c = FakeContainer("paused")
    ctx = FakeCtx(c)
    PauseFault(ctx, ("tidb-0",)).apply()  # not an error: the node is paused
    assert c.calls == ["pause"]
    assert ctx.scripts == ["ledger", "ledger"]  # added, then removed: not our pause


def test_pause_of_a_stopped_node_fails() -> None:
    with pytest.raises(APIError, match="not running"):
        PauseFault(FakeCtx(FakeContainer("exited")), ("tidb-0",)).apply()
