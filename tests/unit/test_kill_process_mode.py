"""Process kill mode without Docker: the wrapped command line, the supervisor script run
by this machine's ``sh``, the server found from ``/proc``, the kill fault's both paths.

The supervisor is a real ``/bin/sh`` process here (as in a container, minus the pid
namespace) and its server a real child, so what is asserted is what the script does:
a SIGKILLed server leaves the supervisor waiting, the start signal brings a new one,
SIGTERM reaches the server and ends the supervisor with its status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.cluster.specs import LABEL_KILL_MODE, ClusterSettings, render_specs
from pytest_tidb_ha.cluster.supervisor import (
    ENTRYPOINT,
    IDLE_NAME,
    NAME,
    SCRIPT,
    SHELL,
    is_server,
    is_supervised,
    missing_shell,
    wrap,
)
from pytest_tidb_ha.faults.initproc import SHARED_KEY, InitProcesses, pidfd_supported
from pytest_tidb_ha.faults.injectors import KillFault
from pytest_tidb_ha.faults.ledger import Tag
from pytest_tidb_ha.faults.netns import Result
from pytest_tidb_ha.faults.network import rule_line
from pytest_tidb_ha.faults.serverproc import (
    EXEC_SCRIPT,
    ExecServer,
    argv,
    children,
    parent,
    parse_pids,
    server_pids,
)
from pytest_tidb_ha.faults.silence import silence_lines
from pytest_tidb_ha.faults.verify import judge_server_killed
from pytest_tidb_ha.scenario.model import Topology

needs_pidfd = pytest.mark.skipif(not pidfd_supported(), reason="no pidfd on this platform")
CID = "5e55" * 16
#: A "server" that writes its argv to a file and sleeps; on SIGTERM it says so in
#: ``<file>.term`` and exits 0.
SERVER = ("import json, signal, sys, time\n"
          "def term(*a):\n"
          "    open(sys.argv[1] + '.term', 'a').write('TERM\\n')\n"
          "    sys.exit(0)\n"
          "signal.signal(signal.SIGTERM, term)\n"
          "open(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + '\\n')\n"
          "time.sleep(600)\n")
ODD_ARGS = ("a b", "it's \"quoted\"", "$HOME `x` \\ *", "")


# -- pure parts ----------------------------------------------------------------------
def test_wrap_keeps_the_servers_argv_word_for_word() -> None:
    entry, command = wrap(("/tidb-server",), ("--store=tikv", *ODD_ARGS))
    assert entry == (SHELL, "-c", SCRIPT, NAME)
    assert command == ("/tidb-server", "--store=tikv", *ODD_ARGS)  # no quoting anywhere


@pytest.mark.parametrize("mode", ["silent", "process"])
def test_specs_wrap_in_the_supervised_modes_and_label_the_mode(mode: str) -> None:
    base = ClusterSettings(run_id="r", topology=Topology(1, 1, 1), kill_mode="container")
    plain = render_specs(base)
    wrapped = render_specs(dataclasses.replace(base, kill_mode=mode))
    for old, new in zip(plain, wrapped, strict=True):
        assert new.entrypoint == ENTRYPOINT
        assert new.command == old.entrypoint + old.command
        assert new.labels[LABEL_KILL_MODE] == mode
        assert LABEL_KILL_MODE not in old.labels
    assert plain[0].entrypoint == ("/pd-server",)
    # a cluster of another mode is another cluster (the pool must not reuse one for it);
    # the container mode's key is what it was before the option existed
    keys = {dataclasses.replace(base, kill_mode=m).key for m in ("container", "silent", "process")}
    assert len(keys) == 3
    with pytest.raises(ValueError, match="kill mode 'pod'"):
        dataclasses.replace(base, kill_mode="pod")


def test_the_default_kill_mode_is_silent() -> None:
    """What a plain run starts: supervised nodes (issue 13: kill's heal in milliseconds)."""
    specs = render_specs(ClusterSettings(run_id="r", topology=Topology(1, 1, 1)))
    assert {s.labels[LABEL_KILL_MODE] for s in specs} == {"silent"}
    assert all(s.entrypoint == ENTRYPOINT for s in specs)


def test_is_supervised_reads_the_entrypoint() -> None:
    assert is_supervised({"Config": {"Entrypoint": list(ENTRYPOINT), "Cmd": ["/x"]}})
    assert not is_supervised({"Config": {"Entrypoint": ["/tidb-server"]}})
    assert not is_supervised({"Config": {"Entrypoint": None}})
    assert not is_supervised({})


def test_is_server_leaves_out_the_idle_child_and_an_unexeced_fork() -> None:
    assert is_server(("/tidb-server", "--store=tikv"))
    assert is_server(("python3", "-u", "/opt/standin/main.py", "tidb"))
    assert not is_server((SHELL, "-c", "kill -STOP $$", IDLE_NAME))
    assert not is_server((*ENTRYPOINT, "/tidb-server"))  # forked, not yet exec'd
    assert not is_server(())  # a zombie


def test_server_pids_and_proc_readers(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cmdline").write_bytes(b"/tidb-server\0-P\0a b\0")
    (tmp_path / "7" / "stat").write_text("7 (weird) name) S 1 7 7 0\n")
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "stat").write_text("8 (x) Z 1 8 8 0\n")
    assert argv(7, tmp_path) == ("/tidb-server", "-P", "a b")
    assert argv(9, tmp_path) == ()
    assert parent(7, tmp_path) == 1
    assert parent(8, tmp_path) == 0  # a zombie runs no more
    kids = {1: [7, 8, 9]}
    names = {7: ("/tidb-server",), 8: (), 9: (SHELL, "-c", "kill -STOP $$", IDLE_NAME)}
    assert server_pids(1, lambda p: kids.get(p, []), lambda p: names.get(p, ())) == [7]


def test_parse_pids_and_the_missing_shell_message() -> None:
    assert parse_pids("noise\n12 34\n") == [12, 34]
    assert parse_pids("\n") == []
    assert missing_shell('failed to create task: exec: "/bin/sh": stat /bin/sh: '
                         "no such file or directory: unknown")
    assert not missing_shell("port is already allocated")


def test_judge_server_killed() -> None:
    assert judge_server_killed("running", [], [41], "tidb-0").ok is True
    bad = judge_server_killed("running", [42], [41], "tidb-0")
    assert bad.ok is False
    assert "42" in bad.detail
    gone = judge_server_killed("exited", [], [41], "tidb-0")
    assert gone.ok is False
    assert "keep running" in gone.detail


# -- the script, run by this machine's sh ------------------------------------------------
#: A server with a child of its own (as the stand-in PD runs etcd), whose pid it records.
PARENT_SERVER = ("import subprocess, sys, time\n"
                 "child = subprocess.Popen(['sleep', '600'])\n"
                 "open(sys.argv[1] + '.child', 'w').write(str(child.pid))\n"
                 "open(sys.argv[1], 'a').write('[]\\n')\n"
                 "time.sleep(600)\n")


class Supervised:
    """The supervisor as a child of this test, its server a Python sleeper."""

    def __init__(self, tmp_path: Path, shell: str = SHELL, server: str = SERVER) -> None:
        self.out = tmp_path / "argv.jsonl"
        entry, command = wrap((sys.executable, "-c", server, str(self.out)), ODD_ARGS)
        # its own process group: a supervisor killed at teardown leaves its stopped idle
        # child behind (in a container, PID 1's death ends the namespace; here, nothing)
        self.proc = subprocess.Popen([shell, *entry[1:], *command], start_new_session=True)

    def kill_all(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def servers(self) -> list[int]:
        return server_pids(self.proc.pid)

    def wait_server(self, old: tuple[int, ...] = (), timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [p for p in self.servers() if p not in old and self.started() > len(old)]
            if new:
                return new[0]
            time.sleep(0.01)
        raise AssertionError(f"no new server; children {self.servers()}")

    def started(self) -> int:
        return len(self.out.read_text().splitlines()) if self.out.exists() else 0


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    s = Supervised(tmp_path)
    yield s
    s.kill_all()


def test_the_server_gets_its_argv_unchanged(supervised: Supervised) -> None:
    supervised.wait_server()
    assert json.loads(supervised.out.read_text().splitlines()[0]) == list(ODD_ARGS)


def test_killed_server_waits_for_the_start_signal_then_runs_again(
        supervised: Supervised) -> None:
    first = supervised.wait_server()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervised.servers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert supervised.servers() == []
    time.sleep(0.2)  # nothing starts it on its own
    assert supervised.servers() == []
    assert supervised.proc.poll() is None
    os.kill(supervised.proc.pid, signal.SIGUSR1)
    second = supervised.wait_server(old=(first,))
    assert second != first
    assert supervised.started() == 2
    assert json.loads(supervised.out.read_text().splitlines()[1]) == list(ODD_ARGS)


def test_sigterm_reaches_the_server_and_ends_the_supervisor(supervised: Supervised) -> None:
    supervised.wait_server()
    os.kill(supervised.proc.pid, signal.SIGTERM)
    # the server's own status (0 here), or 143 when the shell reaped the server inside the
    # wait the signal interrupted (supervisor.py: the status is then the shell's)
    assert supervised.proc.wait(timeout=5) in (0, 143)
    assert Path(f"{supervised.out}.term").read_text() == "TERM\n"  # the server had it, once


def test_sigterm_while_the_server_is_down_ends_the_supervisor(supervised: Supervised) -> None:
    os.kill(supervised.wait_server(), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
            IDLE_NAME in argv(p) for p in children(supervised.proc.pid)):
        time.sleep(0.01)  # until the supervisor is idle, waiting for the start signal
    os.kill(supervised.proc.pid, signal.SIGTERM)
    assert supervised.proc.wait(timeout=5) == 128 + signal.SIGTERM


def test_a_server_that_ends_on_its_own_ends_the_container() -> None:
    # not a SIGKILL: a start-up failure stays a failure, as when the server was PID 1
    entry, command = wrap((SHELL, "-c", "exit 3"), ())
    assert subprocess.run([*entry, *command], timeout=10).returncode == 3


@pytest.mark.parametrize("shell", [SHELL, "/bin/bash"])
def test_exec_script_lists_and_kills_the_server(tmp_path: Path, shell: str) -> None:
    if not Path(shell).exists():
        pytest.skip(f"no {shell}")
    s = Supervised(tmp_path, shell)
    try:
        pid = s.wait_server()

        def run(what: str) -> list[int]:
            done = subprocess.run([shell, "-c", EXEC_SCRIPT, "sh", what, str(s.proc.pid)],
                                  capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            assert done.stderr == ""  # nothing for docker exec's output to carry
            return parse_pids(done.stdout)

        assert run("list") == [pid]
        assert run("kill") == [pid]
        assert run("list") == []  # the idle child is not a server
        assert s.proc.poll() is None
    finally:
        s.kill_all()


# -- the kill fault, both paths ------------------------------------------------------
class Container:
    """A supervised container whose PID 1 is a real local supervisor."""

    def __init__(self, supervisor: subprocess.Popen[bytes]) -> None:
        self.proc = supervisor
        self.id = CID
        self.name = "tidb-0"
        self.status = "running"
        self.attrs: dict[str, Any] = {
            "Config": {"Entrypoint": list(ENTRYPOINT)},
            "State": {"Pid": supervisor.pid, "Running": True},
            "HostConfig": {"RestartPolicy": {"Name": "no"}}}
        self.calls: list[str] = []

    def reload(self) -> None:
        self.calls.append("reload")
        self.status = "running" if self.proc.poll() is None else "exited"

    def exec_run(self, cmd: list[str]) -> tuple[int, bytes]:
        self.calls.append("exec")
        done = subprocess.run([*cmd, str(self.proc.pid)], capture_output=True, timeout=30)
        return done.returncode, done.stdout + done.stderr

    def kill(self, signal: str) -> None:
        self.calls.append(f"kill {signal}")
        os.kill(self.proc.pid, getattr(__import__("signal"), signal))


class Ctx:
    def __init__(self, c: Container, shared: dict[str, Any] | None) -> None:
        self.c = c
        self.shared = shared
        self.tag = Tag("unit", 1, "abcdef", "f0.0")
        self.cluster = None

    def container(self, node: str) -> Container:
        return self.c


def _cycle(fault: KillFault, s: Supervised, c: Container) -> None:
    first = s.wait_server()
    fault.apply()
    assert fault.killed == ["tidb-0"]
    assert fault.servers == {"tidb-0": [first]}
    assert s.servers() == []
    assert s.proc.poll() is None
    verdict = fault.verify(1.0)
    assert verdict is not None
    assert verdict.ok is True, verdict
    fault.heal()
    new = s.servers()
    assert new
    assert first not in new
    assert s.proc.poll() is None
    verdict = fault.verify(1.0)  # the server runs again: a kill would be contradicted
    assert verdict is not None
    assert verdict.ok is False


@needs_pidfd
def test_kill_fault_pidfd_path(supervised: Supervised) -> None:
    c = Container(supervised.proc)
    held = InitProcesses(root=True, local_engine=True,
                         cgroup_of=lambda pid: f"0::/docker/{CID}\n")
    assert held.prime(c) is not None
    fault = KillFault(Ctx(c, {SHARED_KEY: held}), ("tidb-0",))
    _cycle(fault, supervised, c)
    assert fault.paths == {"tidb-0": "process:pidfd"}
    assert not [x for x in c.calls if x.startswith(("exec", "kill"))]  # no Docker call
    assert held.get(CID) is not None  # the supervisor lives on: its pidfd stays held


def test_kill_fault_exec_path(supervised: Supervised) -> None:
    c = Container(supervised.proc)
    fault = KillFault(Ctx(c, None), ("tidb-0",))
    _cycle(fault, supervised, c)
    assert fault.paths == {"tidb-0": "process:exec"}
    assert "kill SIGUSR1" in c.calls


def test_a_heal_that_starts_nothing_fails(supervised: Supervised) -> None:
    supervised.wait_server()
    c = Container(supervised.proc)
    server = ExecServer(c)
    killed = server.kill(5)
    assert killed
    c.kill = lambda signal: None  # type: ignore[method-assign]  # the signal is lost
    with pytest.raises(RuntimeError, match="no new server process"):
        server.start(killed, 0.3)


@pytest.mark.parametrize("path", ["pidfd", "exec"])
def test_the_kill_ends_the_servers_own_children_too(tmp_path: Path, path: str) -> None:
    if path == "pidfd" and not pidfd_supported():
        pytest.skip("no pidfd on this platform")
    s = Supervised(tmp_path, server=PARENT_SERVER)
    try:
        s.wait_server()
        child = int(wait_file(Path(str(s.out) + ".child")))
        c = Container(s.proc)
        shared = None
        if path == "pidfd":
            held = InitProcesses(root=True, local_engine=True,
                                 cgroup_of=lambda pid: f"0::/docker/{CID}\n")
            assert held.prime(c) is not None
            shared = {SHARED_KEY: held}
        fault = KillFault(Ctx(c, shared), ("tidb-0",))
        fault.apply()
        # not left behind, reparented to the supervisor, where it would count as a server
        assert parent(child) == 0
        assert s.servers() == []
        verdict = fault.verify(1.0)
        assert verdict is not None
        assert verdict.ok is True, verdict
    finally:
        s.kill_all()


def wait_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} not written")


# -- silent mode: the process kill, then the node's address silenced ---------------------
IPS = {"pd-0": "10.9.0.2", "tikv-0": "10.9.0.3", "tidb-0": "10.9.0.4"}


class SilentCtx(Ctx):
    """The exec path's context, plus what silent mode asks of it: the cluster's IPs and
    commands in a node's namespace (recorded with the server pids alive at that moment)."""

    def __init__(self, c: Container, s: Supervised, probe: str = "timeout") -> None:
        super().__init__(c, None)
        c.attrs["Config"]["Labels"] = {LABEL_KILL_MODE: "silent"}
        self.s = s
        self.probe = probe
        self.execs: list[tuple[str, str, list[int]]] = []  # (node, what, servers then)
        self.runner = None  # the probe runs on the host python

    def ips(self) -> dict[str, str]:
        return dict(IPS)

    def exec(self, node: str, script: str, what: str, **kw: Any) -> Result:
        self.execs.append((node, what, self.s.servers()))
        if what == "probe":
            return Result(0, json.dumps({"10.9.0.4:4000": [[self.probe, None]]*2}))
        self.scripts = [*getattr(self, "scripts", []), script]
        return Result(0, "")


def test_silence_lines_drop_the_peers_before_resetting_anyone_else() -> None:
    tag = Tag("unit", 1, "abcdef", "f0.0")
    lines = silence_lines("tidb-0", IPS, tag)
    # each line inserts at the top: a chain ends up in the reverse order of its lines
    chains: dict[str, list[str]] = {}
    for line in lines:
        op, chain, pos, spec = line.split(" ", 3)
        assert (op, pos) == ("-I", "1")
        chains.setdefault(chain, []).insert(0, spec)
    assert sorted(r.split()[1] for r in chains["INPUT"][:2]) == ["10.9.0.2/32", "10.9.0.3/32"]
    assert chains["INPUT"][-1].startswith("-p tcp --syn")
    assert chains["INPUT"][-1].endswith("-j REJECT --reject-with tcp-reset")
    assert sorted(chains["OUTPUT"]) == [f"-d 10.9.0.{i}/32 -m comment --comment {tag} -j DROP"
                                        for i in (2, 3)]
    assert all(f"--comment {tag}" in ln for ln in lines)  # the reaper's handle
    assert not any("10.9.0.4" in ln for ln in lines)  # never the node's own address


@pytest.mark.parametrize(("probe", "ok"), [("timeout", True), ("refused", False)])
def test_silent_kill_silences_after_the_kill_and_lifts_before_the_start(
        supervised: Supervised, probe: str, ok: bool) -> None:
    c = Container(supervised.proc)
    ctx = SilentCtx(c, supervised, probe)
    fault = KillFault(ctx, ("tidb-0",))
    first = supervised.wait_server()
    fault.apply()
    assert ctx.execs == [("tidb-0", "iptables-restore silence", [])]  # after the kill
    assert fault.describe()["silenced"] == ["tidb-0"]
    assert "-j DROP" in ctx.scripts[0]
    assert "iptables-restore" in ctx.scripts[0]
    verdict = fault.verify(0.5)
    assert verdict is not None
    assert verdict.ok is ok, verdict  # a refusal is process mode's answer, not silence
    assert ctx.execs[-1][:2] == ("pd-0", "probe")  # from a peer the window did not kill
    fault.heal()
    lift = [e for e in ctx.execs if e[1] == "iptables-restore -D silence"]
    assert lift == [("tidb-0", "iptables-restore -D silence", [])]  # before the start
    assert "-D INPUT" in ctx.scripts[-1]
    new = supervised.servers()
    assert new
    assert first not in new
    assert fault.restarted == []  # the namespace stayed: nothing to apply again
    assert fault.silenced == {}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("iptables-restore")
                    or not shutil.which("unshare"),
                    reason="needs root, iptables-restore and unshare")
def test_silence_lines_are_what_iptables_restore_reads() -> None:
    """The script the kill runs, parsed by the real iptables-restore (``--test``) in a
    network namespace of its own: a quoting slip fails here, not in a kill window."""
    tag = Tag("unit", 1, "abcdef", "f0.0")
    lines = silence_lines("tidb-0", IPS, tag)
    body = "\n".join(["*filter", *lines, "COMMIT", ""])
    done = subprocess.run(["unshare", "-n", "iptables-restore", "--test", "--noflush"],
                          input=body, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    bad = "\n".join(["*filter", rule_line("-I", "INPUT", ["!", "-i", "lo", "-j", "DROP"]),
                     "COMMIT", ""])  # what shlex makes of a negation: refused
    done = subprocess.run(["unshare", "-n", "iptables-restore", "--test", "--noflush"],
                          input=bad, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
