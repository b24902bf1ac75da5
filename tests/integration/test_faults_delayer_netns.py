"""The NFQUEUE delayer program, run as the plugin ships it, in a private network namespace.

No Docker: ``unshare -n`` gives the driver below its own loopback and iptables, where the
delayer (``python3 -c SOURCE``, exactly what :func:`delayer_start_script` runs) holds UDP
datagrams sent to ourselves. Needs root, ``unshare`` and ``iptables`` (as the fault
backends do); the namespace dies with the driver, and the delayer with the driver
(``PR_SET_PDEATHSIG``), so nothing outlives a killed run.

The figures are lower bounds on purpose: a held packet cannot arrive before its latency
(deterministic), and after SIGTERM the delayer lets what it holds go at once, long before
that latency - the bounds above those are wide, so a loaded machine cannot flip them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from pytest_tidb_ha.faults.delayer import SOURCE

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("iptables"),
    reason="needs root, unshare and iptables (like the fault backends)",
)

DRIVER = r"""
import ctypes, json, signal, socket, subprocess, sys, time
source, hold_ms, mode = sys.argv[1], sys.argv[2], sys.argv[3]
QUEUE = "4242"
RULE = ["OUTPUT", "-o", "lo", "-p", "udp", "-j", "NFQUEUE", "--queue-num", QUEUE, "--queue-bypass"]

def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

def rtt(n=3, before_recv=None):
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(("127.0.0.1", 0))
    r.settimeout(30)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = []
    for _ in range(n):
        t = time.monotonic()
        s.sendto(b"x", r.getsockname())
        if before_recv:
            before_recv()
        r.recv(16)
        out.append(time.monotonic() - t)
    return out

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
result = {"plain": rtt()}
delayer = subprocess.Popen([sys.executable, "-I", "-c", source, QUEUE, hold_ms, "0", "tag"],
                           stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
try:
    result["first_line"] = delayer.stdout.readline().strip()
    subprocess.run(["iptables", "-I", *RULE], check=True)
    if mode == "hold":
        result["held"] = rtt()
    else:  # SIGTERM while a datagram is held: it must be let go at once
        def stop():
            time.sleep(0.5)
            delayer.terminate()
        result["released"] = rtt(1, stop)
        result["exit"] = delayer.wait(10)
finally:
    delayer.kill()
print(json.dumps(result))
"""


def drive(hold_ms: int, mode: str) -> dict[str, Any]:
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", DRIVER, SOURCE, str(hold_ms), mode],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_packets_are_held_for_the_latency() -> None:
    got = drive(300, "hold")
    assert got["first_line"] == "ready"
    assert max(got["plain"]) < 0.25, got
    held = got["held"]
    assert isinstance(held, list)
    assert len(held) == 3
    assert all(0.3 <= t < 5.0 for t in held), got


def test_sigterm_lets_held_packets_go_and_exits_zero() -> None:
    got = drive(60_000, "release")
    (released,) = got["released"]
    assert 0.5 <= released < 20.0, got  # after the SIGTERM, long before the 60 s latency
    assert got["exit"] == 0, got
