"""kill through the init process's pidfd: when it is taken, and that it kills (no Docker).

The direct path must be chosen only when Docker would keep the container down as after
``docker kill`` (no restart policy), never for a paused container, and must never signal
a process that is not the container's (a pidfd, checked against the cgroup). A real
child process stands in for a container's init here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.faults.initproc import (
    SHARED_KEY,
    InitProcesses,
    cgroup_names,
    frozen,
    kill_path,
    pidfd_supported,
)
from pytest_tidb_ha.faults.injectors import KillFault
from pytest_tidb_ha.faults.ledger import Tag

CID = "c0ffee" * 10 + "abcd"
needs_pidfd = pytest.mark.skipif(not pidfd_supported(), reason="no pidfd on this platform")


def path(**kw: Any) -> tuple[str, str]:
    base: dict[str, Any] = {"root": True, "local_engine": True, "pidfd": True,
                            "restart_policy": "no", "running": True, "pid": 42}
    return kill_path(**{**base, **kw})


def test_kill_path_is_pidfd_only_when_every_precondition_holds() -> None:
    assert path() == ("pidfd", "")
    assert path(restart_policy="") == ("pidfd", "")
    assert path(root=False) == ("api", "not root")
    assert path(local_engine=False)[0] == "api"
    assert path(pidfd=False)[0] == "api"
    assert path(running=False)[0] == "api"
    assert path(pid=0)[0] == "api"


@pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
def test_a_restart_policy_takes_the_api_path(policy: str) -> None:
    # Docker restarts a container whose process died, not one it killed itself
    how, why = path(restart_policy=policy)
    assert how == "api"
    assert policy in why


def test_cgroup_names_the_container_in_both_drivers() -> None:
    assert cgroup_names(f"0::/system.slice/docker-{CID}.scope\n", CID)
    assert cgroup_names(f"12:pids:/docker/{CID}\n0::/docker/{CID}\n", CID)
    assert not cgroup_names("0::/user.slice/session-1.scope\n", CID)
    assert not cgroup_names(f"0::/docker/{CID}\n", "")


def test_frozen_reads_the_v2_freezer_and_the_v1_state(tmp_path: Path) -> None:
    v2 = tmp_path / "docker" / CID
    v2.mkdir(parents=True)
    (v2 / "cgroup.freeze").write_text("1\n")
    assert frozen(f"0::/docker/{CID}\n", tmp_path)
    (v2 / "cgroup.freeze").write_text("0\n")
    assert not frozen(f"0::/docker/{CID}\n", tmp_path)
    v1 = tmp_path / "freezer" / "docker" / CID
    v1.mkdir(parents=True)
    (v1 / "freezer.state").write_text("FROZEN\n")
    assert frozen(f"7:freezer:/docker/{CID}\n", tmp_path)
    assert not frozen("0::/nowhere\n", tmp_path)  # unknown: Docker decides


class Container:
    """A container whose init is a real child process of this test."""

    def __init__(self, pid: int, *, policy: str = "no", running: bool = True) -> None:
        self.id = CID
        self.name = "tikv-1"
        self.status = "running" if running else "exited"
        self.attrs: dict[str, Any] = {
            "State": {"Pid": pid, "Running": running},
            "HostConfig": {"RestartPolicy": {"Name": policy}}}
        self.calls: list[str] = []

    def kill(self, signal: str) -> None:
        self.calls.append("kill")
        self.status = "exited"

    def wait(self, condition: str, timeout: int) -> dict[str, int]:
        self.calls.append("wait")
        return {"StatusCode": 137}


class Ctx:
    def __init__(self, c: Container, shared: dict[str, Any] | None) -> None:
        self.c = c
        self.shared = shared
        self.tag = Tag("unit", 1, "abcdef", "f0.0")

    def container(self, node: str) -> Container:
        return self.c


def inits(cgroup: str, tmp_path: Path) -> InitProcesses:
    return InitProcesses(root=True, local_engine=True, cgroup_of=lambda pid: cgroup,
                         cgroup_root=tmp_path)


@pytest.fixture
def child() -> Any:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(timeout=10)


@needs_pidfd
def test_kill_signals_the_held_init_and_returns_once_it_is_gone(child: Any,
                                                                 tmp_path: Path) -> None:
    c = Container(child.pid)
    held = inits(f"0::/docker/{CID}\n", tmp_path)
    assert held.prime(c) is not None
    fault = KillFault(Ctx(c, {SHARED_KEY: held}), ("tikv-1",))
    fault.apply()
    assert child.wait(timeout=5) == -9  # SIGKILL, delivered before apply returned
    assert c.calls == []  # no Docker call on the way
    assert fault.paths == {"tikv-1": "pidfd"}
    assert fault.killed == ["tikv-1"]
    assert held.get(CID) is None  # the dead process's pidfd is closed: heal opens a new one


@needs_pidfd
def test_a_pid_outside_the_containers_cgroup_is_never_held(child: Any, tmp_path: Path) -> None:
    held = inits("0::/user.slice/other.scope\n", tmp_path)
    assert held.prime(Container(child.pid)) is None
    assert "cgroup" in held.why_not[CID]
    fault = KillFault(Ctx(Container(child.pid), {SHARED_KEY: held}), ("tikv-1",))
    fault.apply()
    assert fault.paths == {"tikv-1": "api"}
    assert child.poll() is None  # the stand-in "other process" lives


@needs_pidfd
def test_a_paused_container_goes_through_docker(child: Any, tmp_path: Path) -> None:
    (tmp_path / "docker" / CID).mkdir(parents=True)
    (tmp_path / "docker" / CID / "cgroup.freeze").write_text("1\n")
    held = inits(f"0::/docker/{CID}\n", tmp_path)
    c = Container(child.pid)
    assert held.prime(c) is not None
    fault = KillFault(Ctx(c, {SHARED_KEY: held}), ("tikv-1",))
    fault.apply()
    assert c.calls == ["kill", "wait"]
    assert fault.paths == {"tikv-1": "api"}
    assert child.poll() is None


@needs_pidfd
def test_restart_policy_and_no_shared_store_take_the_api_path(child: Any,
                                                              tmp_path: Path) -> None:
    held = inits(f"0::/docker/{CID}\n", tmp_path)
    assert held.prime(Container(child.pid, policy="always")) is None
    c = Container(child.pid)
    KillFault(Ctx(c, None), ("tikv-1",)).apply()
    assert c.calls == ["kill", "wait"]
    assert child.poll() is None


@needs_pidfd
def test_an_init_that_already_exited_falls_back_to_docker(child: Any, tmp_path: Path) -> None:
    held = inits(f"0::/docker/{CID}\n", tmp_path)
    c = Container(child.pid)
    assert held.prime(c) is not None
    child.kill()
    child.wait(timeout=5)
    fault = KillFault(Ctx(c, {SHARED_KEY: held}), ("tikv-1",))
    fault.apply()
    assert c.calls == ["kill", "wait"]  # Docker answers for a process already gone
    assert held.get(CID) is None


def test_close_closes_every_held_pidfd(tmp_path: Path) -> None:
    opened: list[int] = []

    def opener(pid: int) -> int:
        fd = os.open(str(tmp_path), os.O_RDONLY)
        opened.append(fd)
        return fd

    held = InitProcesses(root=True, local_engine=True, opener=opener,
                         cgroup_of=lambda pid: f"0::/docker/{CID}\n", cgroup_root=tmp_path)
    held.pidfd = True
    assert held.prime(Container(4242)) is not None
    held.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(opened[0])
