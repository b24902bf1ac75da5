"""A few plain containers on a private network, wrapped in the cluster handle.

Network faults need no TiDB: four ``tidb-standin-base`` containers named like cluster
nodes run a tiny TCP/UDP echo server, and every measurement is taken *inside* the
containers (``docker exec python3``), so what we see is what a node would see.
The other fault test modules import the fixtures and probes from here; the tests in
this module check the harness itself (a healthy network is fully connected).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pytest_tidb_ha.cluster.handle import Cluster, Node, container_ip
from pytest_tidb_ha.cluster.specs import LABEL_KILL_MODE
from pytest_tidb_ha.cluster.supervisor import wrap
from pytest_tidb_ha.faults.ledger import LEDGER_CHAIN
from pytest_tidb_ha.faults.netns import make_runner
from pytest_tidb_ha.options import SUPERVISED_KILL_MODES

pytestmark = pytest.mark.docker

BASE_IMAGE = os.environ.get("TIDB_HA_FAULT_BASE_IMAGE", "tidb-standin-base:latest")
NAMES = ("pd-0", "tikv-0", "tikv-1", "tidb-0")
TCP_PORT = 7000
UDP_PORT = 7001
LABEL = "org.pytest-tidb-ha"

# PID 1 of a container gets no default signal actions: without its own SIGTERM handler
# the server would ignore ``docker stop``/``restart`` until Docker's 10 s SIGKILL. Real
# tidb/pd/tikv (and the stand-in) exit on SIGTERM; so does this one.
ECHO_SERVER = f"""
import os, signal, socket, threading
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", {TCP_PORT})); s.listen(128)
    while True:
        c, _ = s.accept(); c.close()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", {UDP_PORT}))
    with open("/tmp/udp.log", "a", buffering=1) as log:
        while True:
            data, addr = u.recvfrom(2048)
            if data.startswith(b"echo"):
                try:
                    u.sendto(data, addr)
                except OSError:  # EPERM: our own DROP rule refused the reply
                    pass
            else:
                log.write(data.decode() + "\\n")
threading.Thread(target=udp, daemon=True).start()
tcp()
"""

PROBE = """
import json, socket, sys, time
mode, peers, n, timeout = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
out = {}
for name, ip in peers:
    if mode == "tcp":
        times = []
        for _ in range(n):
            t = time.perf_counter()
            try:
                socket.create_connection((ip, @TCP@), timeout=timeout).close()
                times.append(time.perf_counter() - t)
            except OSError:
                pass
        times.sort()
        out[name] = {"ok": len(times), "n": n, "rtt": times[len(times) // 2] if times else None}
    elif mode == "udp":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(timeout)
        got = 0
        for i in range(n):
            try:
                u.sendto(b"echo %d" % i, (ip, @UDP@))
            except OSError:
                continue
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    data = u.recv(64)
                except OSError:
                    break
                if data == b"echo %d" % i:
                    got += 1
                    break
        out[name] = {"ok": got, "n": n}
    else:  # oneway: the receiver logs the token
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(n):
            try:
                u.sendto(("%s %s" % (mode, name)).encode(), (ip, @UDP@))
            except OSError:  # EPERM: an OUTPUT DROP rule refused it
                pass
print(json.dumps(out))
""".replace("@TCP@", str(TCP_PORT)).replace("@UDP@", str(UDP_PORT))



def wait_for(what: str, check: Callable[[], Any], timeout: float, story: Callable[[], str] = str) -> Any:
    """Poll *check* every 0.2 s until it answers something true; fail naming *what*."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout}s (last: {last!r}) {story()}")

def labels(run: str) -> dict[str, str]:
    return {f"{LABEL}.plugin": "pytest-tidb-ha", f"{LABEL}.run": run,
            f"{LABEL}.pid": str(os.getpid()), f"{LABEL}.host": socket.gethostname(),
            f"{LABEL}.cluster": f"faults-{run}"}


def start_mini_cluster(docker: Any, names: tuple[str, ...] = NAMES, *,
                       volumes: bool = False,
                       kill_mode: str = "container") -> tuple[Cluster, list[Any], Any]:
    """Network + containers, wrapped in a Cluster. Caller removes them (:func:`remove`).

    ``kill_mode`` ``silent``/``process``: each echo server runs under the supervisor
    (cluster/supervisor.py), labelled with the mode, as ``--ha-kill-mode`` starts a node;
    ``container`` (here the default): the echo server is PID 1."""
    entrypoint, command = (None, ["python3", "-c", ECHO_SERVER])
    mode_label: dict[str, str] = {}
    if kill_mode in SUPERVISED_KILL_MODES:
        wrapped = wrap((), command)
        entrypoint, command = list(wrapped[0]), list(wrapped[1])
        mode_label = {LABEL_KILL_MODE: kill_mode}
    run = uuid.uuid4().hex[:8]
    lab = labels(run)
    net = docker.networks.create(f"tidb-ha-faults-{run}", driver="bridge", labels=lab)
    containers: list[Any] = []
    try:
        for name in names:
            if volumes:  # created first, labelled: mounting a missing name creates it unlabelled
                docker.volumes.create(f"tidb-ha-faults-{run}-{name}", labels=lab)
            c = docker.containers.run(
                BASE_IMAGE, command, entrypoint=entrypoint, detach=True,
                name=f"tidb-ha-faults-{run}-{name}",
                hostname=name, network=net.name, labels={**lab, f"{LABEL}.component": name.split("-")[0], **mode_label},
                volumes={f"tidb-ha-faults-{run}-{name}": {"bind": "/data", "mode": "rw"}} if volumes else None,
            )
            containers.append(c)
        nodes = []
        for name, c in zip(names, containers, strict=True):
            c.reload()
            nodes.append(Node(name=name, component=name.split("-")[0], container_id=c.id,
                              ip=container_ip(c.attrs, net.name)))
        cluster = Cluster(f"faults-{run}", nodes, docker=docker, network_name=net.name, labels=lab)
        return cluster, containers, net
    except BaseException:
        remove(docker, containers, net)
        raise


def remove(docker: Any, containers: list[Any], net: Any) -> None:
    vols = []
    for c in containers:
        vols += [m.get("Name") for m in c.attrs.get("Mounts", []) if m.get("Type") == "volume"]
        with contextlib.suppress(Exception):  # already gone
            c.remove(force=True)
    for v in vols:
        with contextlib.suppress(Exception):
            docker.volumes.get(v).remove(force=True)
    with contextlib.suppress(Exception):
        net.remove()


@pytest.fixture(scope="module")
def mini_cluster(docker_engine: Any) -> Iterator[Cluster]:
    """Four echo-server containers named pd-0, tikv-0, tikv-1, tidb-0 (module scope)."""
    try:
        docker_engine.images.get(BASE_IMAGE)
    except Exception:  # noqa: BLE001
        pytest.skip(f"image {BASE_IMAGE} is missing (scripts/setup.sh builds it)")
    cluster, containers, net = start_mini_cluster(docker_engine)
    try:
        wait_all_reachable(cluster)
        yield cluster
    finally:
        remove(docker_engine, containers, net)


def ips(cluster: Cluster) -> dict[str, str]:
    return {n.name: n.ip for n in cluster.nodes if n.ip}


def probe(cluster: Cluster, mode: str, n: int = 1, timeout: float = 0.5,
          nodes: tuple[str, ...] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The matrix ``{(from, to): result}`` measured inside every container at once."""
    addr = ips(cluster)
    names = nodes or tuple(addr)

    def one(name: str) -> dict[tuple[str, str], dict[str, Any]]:
        peers = [[p, addr[p]] for p in addr if p != name]
        how = mode if mode in ("tcp", "udp") else f"{mode}.{name}"  # oneway token names the sender
        if mode not in ("tcp", "udp"):  # datagrams sent: there is no answer to wait for
            exec_ok(cluster, name, ["python3", "-c", PROBE, how, json.dumps(peers), str(n), str(timeout)])
            return {}
        answer = poll_answer(cluster, name, ["python3", "-c", PROBE, how, json.dumps(peers), str(n),
                                             str(timeout)])
        return {(name, peer): res for peer, res in json.loads(answer).items()}

    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(one, names))
    return {k: v for r in results for k, v in r.items()}


def exec_ok(cluster: Cluster, name: str, cmd: list[str]) -> str:
    """``docker exec`` *cmd* in *name*; its output (the command must exit 0)."""
    code, out = cluster.container(name).exec_run(cmd)
    assert isinstance(out, bytes)  # not streamed
    text = out.decode(errors="replace")
    assert code == 0, text
    return text


#: How long a measurement may go without reaching us: far above any probe's own run time.
ANSWER_WITHIN = 60.0


def poll_answer(cluster: Cluster, name: str, cmd: list[str]) -> str:
    """The first non-empty output of *cmd* run in *name*, polled for.

    The engine sometimes hands back an exec's exit code 0 with none of its output (the
    attach lost the race with a process that exits at once); the probe always prints its
    JSON, so an empty answer is a lost one, and the measurement is taken again.
    """
    deadline = time.monotonic() + ANSWER_WITHIN
    while True:
        text = exec_ok(cluster, name, cmd).strip()
        if text:
            return text
        assert time.monotonic() < deadline, f"{name}: the probe gave no output for {ANSWER_WITHIN:.0f}s"


#: One TCP connect from inside a node: ``open``, ``refused``, ``timeout`` or the errno's name.
DIAL = """
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("open")
except ConnectionRefusedError:
    print("refused")
except (TimeoutError, socket.timeout):
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno or 0, str(exc)))
"""


def dial(cluster: Cluster, sender: str, address: str, port: int, timeout: float = 2.0) -> str:
    """What a peer sees when it opens a new connection to *address*:*port* (``DIAL``)."""
    return poll_answer(cluster, sender, ["python3", "-c", DIAL, address, str(port), str(timeout)])


def reachability(cluster: Cluster) -> dict[tuple[str, str], bool]:
    return {pair: res["ok"] > 0 for pair, res in probe(cluster, "tcp", n=2, timeout=0.4).items()}


def oneway(cluster: Cluster) -> dict[tuple[str, str], bool]:
    """UDP one-way reachability: each receiver logs the tokens that arrived."""
    token = "t" + uuid.uuid4().hex[:8]
    probe(cluster, token, n=3)
    time.sleep(0.2)  # datagrams in flight on a local bridge; no completion to poll for
    out: dict[tuple[str, str], bool] = {}
    for receiver in ips(cluster):
        _code, log = cluster.container(receiver).exec_run(["sh", "-c", "cat /tmp/udp.log 2>/dev/null"])
        assert isinstance(log, bytes)  # not streamed
        text = log.decode(errors="replace")
        for sender in ips(cluster):
            if sender != receiver:
                out[(sender, receiver)] = f"{token}.{sender} {receiver}" in text
    return out


def wait_all_reachable(cluster: Cluster, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: dict[tuple[str, str], bool] = {}
    while time.monotonic() < deadline:
        last = reachability(cluster)
        if last and all(last.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"mini cluster not fully connected after {timeout}s: "
                         f"{sorted(p for p, ok in last.items() if not ok)}")


def leftover_faults(cluster: Cluster) -> dict[str, str]:
    """Per container: any tidb-ha iptables rule, ledger entry or 7e57 qdisc still there."""
    found: dict[str, str] = {}
    runner = make_runner(cluster.docker)
    try:
        _leftovers(cluster, runner, found)
    finally:
        runner.close()
    return found


def _leftovers(cluster: Cluster, runner: Any, found: dict[str, str]) -> None:
    for node in cluster.nodes:
        c = cluster.container(node.name)
        c.reload()
        if c.status != "running":
            continue
        # Not ``docker exec --privileged``: this engine refuses privileged execs.
        result = runner.run(
            c, f"iptables -S; iptables -S {LEDGER_CHAIN} 2>/dev/null; tc qdisc show")
        text = result.output
        bad = [ln for ln in text.splitlines() if "tidb-ha:" in ln or " 7e57:" in ln or "netem" in ln]
        if bad:
            found[node.name] = "\n".join(bad)


def test_healthy_network_is_fully_connected(mini_cluster: Cluster) -> None:
    matrix = reachability(mini_cluster)
    assert len(matrix) == len(NAMES) * (len(NAMES) - 1)
    assert all(matrix.values()), matrix
    assert leftover_faults(mini_cluster) == {}


def test_oneway_probe_sees_every_direction(mini_cluster: Cluster) -> None:
    matrix = oneway(mini_cluster)
    assert len(matrix) == len(NAMES) * (len(NAMES) - 1)
    assert all(matrix.values()), matrix
