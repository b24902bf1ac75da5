"""Two Docker engines on this machine: ``-n 2 --ha-docker-hosts B,A`` puts one worker on each.

The test starts a second ``dockerd`` (``second_engine``: its own socket, data root,
exec root, pidfile, address pool and cgroup parent, a loopback TCP listener so the
plugin treats it as remote), loads the stand-in images into it, and runs the
matrix's smoke cells with ``-n 2 --ha-docker-hosts tcp://B,unix://A`` while a poller
reads **each engine's own container list**: every worker's clusters must sit on one
engine, one worker per engine, faults on the TCP engine through helper containers
(nsenter on the unix one); afterwards neither engine has anything of the run left.

``python -m pytest_tidb_ha merge`` of that run must give the single-engine verdicts:
exactly the smoke cells a single-engine run collects, every one ``converged`` -- the
verdict ``test_matrix_smoke.py`` requires of each cell on one engine (it runs them; a
second single-engine run here would cost the suite a minute and prove nothing more).
Finally the second engine is stopped and must leave nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from second_engine import (
    SecondEngine,
    alive,
    default_engine_url,
    reap_stale_engines,
    second_engine,
)

from pytest_tidb_ha.faults.helper_image import BASE_ENV

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
LABEL = "org.pytest-tidb-ha"
HELPER_IMAGE = "tidb-standin-base:latest"
#: Time scale 0.3, not the gate's 0.1: two workers on two cores, while other tests may load
#: the machine too, can starve the stand-in for longer than a 12 s stall window; the
#: verdicts compared must not depend on that luck.
#: No helper image is named: a named one serves every engine (the unix one too), so which
#: engine showed helper containers would depend on which worker xdist gave the partition
#: cell (the first worker ready gets the first cell). The plugin builds its own helper
#: where it needs one, on the TCP engine, from the stand-in base (loaded there: it has the
#: tools, so the build needs no network; the default base is alpine on Docker Hub).
RUN = ["scenarios/matrix", "-m", "smoke", "--standin", "--ha-time-scale", "0.3",
       "--ha-workload-scale", "0.1",
       "-o", "junit_family=xunit2", "-p", "no:cacheprovider", "-q"]


def _build_standin() -> str:
    """The image ``--standin`` runs: tagged with the default release it plays, as the
    plugin names it (``tidb-standin:<hash>-v8.5.7``); the second engine needs that tag."""
    from pytest_tidb_ha.options import DEFAULT_TIDB_VERSION

    done = subprocess.run(["bash", str(REPO / "tests" / "standin" / "build.sh"),
                           "--version", DEFAULT_TIDB_VERSION],
                          capture_output=True, text=True, timeout=900, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[str, SecondEngine]]:
    if os.geteuid() != 0:
        pytest.skip("starting a second dockerd needs root (CI runs as root)")
    for tool in ("dockerd", "docker", "iptables", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    first = default_engine_url()
    ref = _build_standin()
    # The first engine's default bridge: a second dockerd must never take it away.
    first_bridge = Path("/sys/class/net/docker0")
    had_bridge = first_bridge.exists()
    with second_engine() as second:
        second.load_images([ref, HELPER_IMAGE], first)
        yield first, second
    assert second.leftovers == [], f"the second engine left {second.leftovers}"
    assert first_bridge.exists() or not had_bridge, "the second engine deleted docker0"


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (the xdist workers of a pytest run)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out.update(kids)
        todo += kids
    return out


@dataclass
class Seen:
    """What the poller saw on each engine: (worker pid, component, container name)."""

    by_engine: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)


class Poller(threading.Thread):
    def __init__(self, clients: dict[str, Any], root_pid: int) -> None:
        super().__init__(name="engine-poller", daemon=True)
        self.clients = clients
        self.root_pid = root_pid
        self.seen = Seen({url: set() for url in clients})
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.3):
            ours = {str(p) for p in _children(self.root_pid)}
            for url, client in self.clients.items():
                try:
                    listing = client.containers.list(
                        all=True, sparse=True, filters={"label": [f"{LABEL}.plugin"]})
                except Exception:  # noqa: BLE001, S112 - the engine is busy: next round
                    continue
                for c in listing:
                    labels = c.attrs.get("Labels") or {}
                    if labels.get(f"{LABEL}.pid") in ours:
                        self.seen.by_engine[url].add(
                            (labels[f"{LABEL}.pid"], labels.get(f"{LABEL}.component", ""),
                             str(c.attrs["Names"][0]).lstrip("/")))


def _ours(client: Any, pids: set[str]) -> list[str]:
    flt = {"label": [f"{LABEL}.plugin"]}
    found = [f"container {c.attrs['Names'][0]}" for c in
             client.containers.list(all=True, sparse=True, filters=flt)
             if (c.attrs.get("Labels") or {}).get(f"{LABEL}.pid") in pids]
    found += [f"network {n.name}" for n in client.networks.list(filters=flt)
              if (n.attrs.get("Labels") or {}).get(f"{LABEL}.pid") in pids]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=flt)
              if (v.attrs.get("Labels") or {}).get(f"{LABEL}.pid") in pids]
    return found


def _verdicts(junit: Path) -> dict[tuple[str, str], str | None]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        out[(case.get("classname", ""), case.get("name", ""))] = props.get("ha_verdict")
    return out


def _smoke_cells() -> list[tuple[str, str]]:
    """The (classname, name) of every cell a single-engine run of ``RUN`` holds, as its
    JUnit report names them: collected, not run (no container starts)."""
    done = subprocess.run([sys.executable, "-m", "pytest", *RUN, "--collect-only"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    from pytest_tidb_ha.report.merge import junit_address

    return [junit_address(line.strip()) for line in done.stdout.splitlines()
            if "::" in line and not line.startswith(" ")]


def test_two_engines_one_worker_each_clean_and_same_verdicts(
        engines: tuple[str, SecondEngine], tmp_path: Path) -> None:
    import docker

    first, second = engines
    clients = {first: docker.DockerClient(base_url=first),
               second.tcp_url: docker.DockerClient(base_url=second.tcp_url)}
    multi = tmp_path / "multi"
    cmd = [sys.executable, "-m", "pytest", *RUN, "-n", "2",
           "--ha-docker-hosts", f"{second.tcp_url},{first}",
           "--ha-artifacts", str(multi / "ha-artifacts"), f"--junitxml={multi}/junit.xml"]
    env = {**os.environ, BASE_ENV: HELPER_IMAGE}
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    poller = Poller(clients, proc.pid)
    poller.start()
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        poller.stop.set()
        poller.join(10)
        if proc.poll() is None:
            proc.kill()
    story = out[-5000:]
    assert proc.returncode == 0, story

    seen = poller.seen.by_engine
    workers = {url: {pid for pid, comp, _ in items if comp != "helper"}
               for url, items in seen.items()}
    assert all(len(w) == 1 for w in workers.values()), (workers, story)  # one worker per engine
    assert workers[first] != workers[second.tcp_url], workers
    everyone = workers[first] | workers[second.tcp_url]
    # Both cells inject faults, so both sweep their containers for dead runs' rules before
    # the first window (iptables -S in each netns), and the partition cell cuts the network:
    # through helper containers on the TCP engine, with nsenter (no container) on the unix
    # one, whichever cell each worker got.
    assert not [n for _, comp, n in seen[first] if comp == "helper"], seen[first]
    assert [n for _, comp, n in seen[second.tcp_url] if comp == "helper"], seen[second.tcp_url]
    for url, client in clients.items():
        assert _ours(client, everyone) == [], f"{url} kept resources of the run"

    merged = subprocess.run([sys.executable, "-m", "pytest_tidb_ha", "merge", str(multi),
                             "--junitxml", str(tmp_path / "merged.xml")],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "tidb-ha merge: results without shard records: 2 tests: 2 passed" in merged.stdout

    expected = {cell: "converged" for cell in _smoke_cells()}
    assert len(expected) == 2, expected
    assert _verdicts(tmp_path / "merged.xml") == expected
    for client in clients.values():
        client.close()


def test_a_killed_runs_second_engine_is_reaped_by_the_next() -> None:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("starting a second dockerd needs root and dockerd (CI runs as root)")
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); "
            "from second_engine import second_engine\n"
            "with second_engine() as e:\n"
            "    print(e.root, e.pool, flush=True); time.sleep(600)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    root, _pool = child.stdout.readline().split()
    daemon = int(Path(root, "docker.pid").read_text())
    child.kill()  # SIGKILL: no finally runs
    child.wait(30)
    assert Path(root).exists()
    assert alive(daemon)
    rule = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert Path(root).name in rule

    assert root in reap_stale_engines()
    assert not Path(root).exists()
    assert not alive(daemon)
    rule = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert Path(root).name not in rule
