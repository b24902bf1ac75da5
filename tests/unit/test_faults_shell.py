"""The long-lived shell a fault runner keeps per namespace, and the warm-up's node pick.

The shell runs as a plain ``sh`` here (no namespace, no Docker); the nsenter variant
enters this process's own network namespace (root only), where the scripts change
nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

import pytest

from pytest_tidb_ha.faults.netns import FaultExecError, NsenterRunner, ShellSession
from pytest_tidb_ha.faults.warmup import candidates
from pytest_tidb_ha.scenario.selectors import parse_selector


@pytest.fixture
def shell() -> Any:
    s = ShellSession(["sh"])
    yield s
    s.close()


def test_status_and_merged_output(shell: ShellSession) -> None:
    result = shell.run("echo out; echo err >&2; exit 3")
    assert result.code == 3
    assert result.output == "out\nerr\n"


def test_exit_ends_only_the_script(shell: ShellSession) -> None:
    shell.run("exit 7")
    assert shell.alive()
    assert shell.run("echo still").output == "still\n"


def test_output_without_newline_and_here_documents(shell: ShellSession) -> None:
    assert shell.run("printf tail").output == "tail"
    doc = shell.run("cat <<'EOF'\none\ntwo\nEOF\n")
    assert (doc.code, doc.output) == (0, "one\ntwo\n")


def test_a_read_of_stdin_does_not_eat_the_next_script(shell: ShellSession) -> None:
    assert shell.run("cat; echo after").output == "after\n"
    assert shell.run("echo next").output == "next\n"


def test_one_process_serves_every_script(shell: ShellSession) -> None:
    pids = {shell.run("echo $$").output for _ in range(3)}
    assert len(pids) == 1


def test_timeout_kills_the_shell(shell: ShellSession) -> None:
    t = time.monotonic()
    with pytest.raises(FaultExecError, match="timed out"):
        shell.run("sleep 30", timeout=0.3)
    assert time.monotonic() - t < 5
    assert not shell.alive()


def test_a_syntax_error_is_a_failed_result_not_a_hang(shell: ShellSession) -> None:
    result = shell.run("if then fi", timeout=5)
    assert result.code != 0
    assert "then" in result.output


class OwnProcess:
    """A container whose init process is this test process (its netns: ours)."""

    id = "self"
    name = "self"
    status = "running"

    def __init__(self) -> None:
        self.attrs: dict[str, Any] = {"State": {"Pid": os.getpid()}}
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1


needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nsenter") is None,
                                reason="nsenter needs root")


@needs_root
def test_nsenter_runner_keeps_one_shell_per_namespace() -> None:
    runner, c = NsenterRunner(), OwnProcess()
    other = subprocess.Popen(["sleep", "30"])  # a stand-in for a restarted init
    try:
        first = runner.run(c, "echo $$").output
        assert runner.run(c, "echo $$").output == first
        assert c.reloads == 1  # the pid was asked once
        c.attrs["State"]["Pid"] = other.pid  # the container restarted: a new init process
        runner._pids.clear()  # (its old pid would have gone with the old namespace)
        assert runner.run(c, "echo $$").output != first
    finally:
        runner.close()
        other.kill()
        other.wait()
    c.attrs["State"]["Pid"] = os.getpid()
    assert runner.run(c, "echo $$").code == 0  # a closed runner starts afresh
    runner.close()


@needs_root
def test_nsenter_runner_reports_a_stopped_container() -> None:
    runner, c = NsenterRunner(), OwnProcess()
    c.attrs["State"]["Pid"] = 0
    with pytest.raises(FaultExecError, match="not running"):
        runner.run(c, "true")


NAMES = ["pd-0", "pd-1", "tikv-0", "tikv-1", "tidb-0"]


@pytest.mark.parametrize(("selector", "expected"), [
    ("tikv(random)_to_all", ["tikv-0", "tikv-1", "pd-0", "pd-1", "tidb-0"]),
    ("tikv-0_to_pd-0", ["tikv-0", "pd-0"]),
    ("pdleader", ["pd-0", "pd-1"]),
    ("ddlowner_to_tikv(one)", ["tidb-0", "tikv-0", "tikv-1"]),
    ("tikv-9", []),
])
def test_candidates_cover_every_draw(selector: str, expected: list[str]) -> None:
    assert candidates(parse_selector(selector), NAMES) == expected


class FakeApi:
    def __init__(self) -> None:
        self.inspects = 0
        self.ips = {"c-pd": "10.0.0.2", "c-tikv": "10.0.0.3"}

    def inspect_network(self, name: str) -> dict[str, Any]:
        self.inspects += 1
        return {"Containers": {cid: {"IPv4Address": f"{ip}/24"} for cid, ip in self.ips.items()}}


class FakeDocker:
    def __init__(self) -> None:
        self.api = FakeApi()


class IpNode:
    def __init__(self, name: str) -> None:
        self.name, self.component = name, name.split("-")[0]
        self.container_id, self.ip = f"c-{self.component}", None


class IpCluster:
    network_name = "net"

    def __init__(self) -> None:
        self.docker = FakeDocker()
        self.nodes = [IpNode("pd-0"), IpNode("tikv-0")]

    def container(self, node: str) -> Any:
        return type("C", (), {"id": f"c-{node.split('-')[0]}", "name": node})()


class KeyedRunner:
    method = "nsenter"
    cheap_namespace_key = True

    def __init__(self) -> None:
        self.netns = {"c-pd": "net:[1]", "c-tikv": "net:[2]"}

    def namespace_key(self, container: Any) -> str:
        return self.netns[container.id]


def test_ips_are_read_once_while_no_namespace_changes() -> None:
    from pytest_tidb_ha.faults.context import FaultContext
    from pytest_tidb_ha.faults.ledger import Tag

    cluster, runner, shared = IpCluster(), KeyedRunner(), {}  # type: ignore[var-annotated]
    tag = Tag("unit", 1, "abcdef", "f0.0")

    def window() -> dict[str, str]:  # each window builds its own context, sharing the run's
        return FaultContext(cluster, runner, tag, shared=shared).ips()

    assert window() == {"pd-0": "10.0.0.2", "tikv-0": "10.0.0.3"}
    assert window() == {"pd-0": "10.0.0.2", "tikv-0": "10.0.0.3"}
    assert cluster.docker.api.inspects == 1
    runner.netns["c-tikv"] = "net:[9]"  # tikv-0 restarted and came back elsewhere
    cluster.docker.api.ips["c-tikv"] = "10.0.0.9"
    assert window()["tikv-0"] == "10.0.0.9"
    assert cluster.docker.api.inspects == 2
    runner.cheap_namespace_key = False  # a helper runner: Docker is asked every window
    window()
    assert cluster.docker.api.inspects == 3
