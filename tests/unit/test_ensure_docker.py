"""scripts/ensure-docker.sh's handling of pid files a killed engine left behind.

A stop that kills dockerd and its containerd leaves their pid files. dockerd
trusts them by pid alone, so once the pid belongs to another process it waits
15 s on a containerd that is not there and exits: that failed a CI run. These
tests source the script (which then only defines its functions) and call
``clear_stale_pidfile`` on files in a temporary directory, with decoy processes
named like the daemons. Nothing here touches the real engine's files.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-docker.sh"


def clear(pidfile: Path, name: str, sock: Path) -> str:
    out = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; clear_stale_pidfile "$1" "$2" "$3"', "_",
         str(pidfile), name, str(sock)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return out.stderr


@pytest.fixture
def decoy(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A long sleep whose process name is ``containerd``."""
    exe = tmp_path / "containerd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "600"])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{proc.pid}/comm").read_text().strip() != "containerd":
        assert time.monotonic() < deadline, "the decoy never took its name"
        time.sleep(0.01)
    yield proc
    proc.kill()
    proc.wait()


def test_a_pid_reused_by_another_process_is_removed_and_that_process_left_alone(
        tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "600"])
    try:
        pidfile = tmp_path / "containerd.pid"
        pidfile.write_text(f"{other.pid}\n")
        err = clear(pidfile, "containerd", tmp_path / "containerd.sock")
        assert not pidfile.exists()
        assert "is sleep, not containerd" in err
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_pid_no_process_holds_is_removed(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text(str(gone.pid))
    assert "is gone, not dockerd" in clear(pidfile, "dockerd", tmp_path / "docker.sock")
    assert not pidfile.exists()


def test_an_empty_pid_file_is_removed(tmp_path: Path) -> None:
    pidfile = tmp_path / "docker.pid"
    pidfile.write_text("")
    clear(pidfile, "dockerd", tmp_path / "docker.sock")
    assert not pidfile.exists()


def test_a_leftover_daemon_without_its_socket_is_stopped(
        tmp_path: Path, decoy: subprocess.Popen[bytes]) -> None:
    pidfile = tmp_path / "containerd.pid"
    pidfile.write_text(str(decoy.pid))
    err = clear(pidfile, "containerd", tmp_path / "containerd.sock")
    assert decoy.wait(timeout=10) != 0
    assert not pidfile.exists()
    assert "serves no" in err


def test_a_daemon_serving_its_socket_is_kept(
        tmp_path: Path, decoy: subprocess.Popen[bytes]) -> None:
    pidfile = tmp_path / "containerd.pid"
    pidfile.write_text(str(decoy.pid))
    sock_path = tmp_path / "containerd.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        assert clear(pidfile, "containerd", sock_path) == ""
    assert pidfile.exists()
    assert decoy.poll() is None


def test_sourcing_the_script_runs_nothing() -> None:
    """The guard that lets the tests above source it: no engine check, no install."""
    out = subprocess.run(["bash", "-c", f'source "{SCRIPT}"; echo sourced'],
                         capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout == "sourced\n"
    assert out.stderr == ""


@pytest.mark.parametrize("close", [False, True])
def test_the_daemon_keeps_nothing_its_caller_had_open(tmp_path: Path, close: bool) -> None:
    """A lock held around the script (``flock``) stayed held by dockerd for good: the
    daemon is started from a subshell that first closes every descriptor above 2."""
    lock = tmp_path / "lock"
    closing = "close_inherited_fds; " if close else ""
    out = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; exec 9>"$1"; ( {closing}exec readlink /proc/self/fd/9 )',
         "_", str(lock)], capture_output=True, text=True, timeout=30, check=False)
    if close:
        assert out.returncode != 0, out
        assert out.stdout == "", out
    else:  # the check sees an inherited descriptor when there is one
        assert out.stdout.strip() == str(lock), out
