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
