"""``--ha-kill-mode=process`` and ``silent`` on a 1/1/1 stand-in cluster: the server dies,
the container stays (and in silent mode, the default, its address goes silent to its peers).

What a user of the mode relies on, observed end to end: the kill window makes SQL fail,
the container (same id, same start time) keeps running with no server in it (a peer's
new connection is refused, not left unanswered as in container mode), the heal
brings SQL back, ``docker logs`` shows both server starts, and ``docker stop`` still
stops the node through SIGTERM (the supervisor forwards it: the server's own exit, not
Docker's SIGKILL after the grace period). Nothing of the run survives it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_faults_harness import dial, ips, leftover_faults, wait_for

from pytest_tidb_ha.cluster.handle import Cluster
from pytest_tidb_ha.cluster.lifecycle import start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import LABEL_RUN, TIDB_PORT, ClusterSettings
from pytest_tidb_ha.cluster.supervisor import is_supervised
from pytest_tidb_ha.faults.nemesis import Nemesis
from pytest_tidb_ha.scenario.model import Duration, FaultSpec, Schedule, Topology
from pytest_tidb_ha.scenario.selectors import parse_selector
from pytest_tidb_ha.timeline import Timeline

pytestmark = pytest.mark.docker

#: The stand-in TiDB's start line (tests/standin/image/tidb/server.py), once per start.
STARTED = "server is running MySQL protocol"


def select_1(cluster: Cluster) -> bool:
    try:
        return bool(cluster.client(connect_timeout=1, read_timeout=2).query("SELECT 1"))
    except Exception:  # noqa: BLE001 - failing is what we look for
        return False


def settings_111(run_id: str, image: str, **kw: Any) -> ClusterSettings:
    """A 1/1/1 stand-in cluster's settings (``kw``: the kill mode)."""
    return ClusterSettings(
        run_id=run_id, topology=Topology(1, 1, 1), images={c: image for c in ("pd", "tikv", "tidb")},
        env={c: {"STANDIN_TIME_SCALE": "0.3"} for c in ("pd", "tikv", "tidb")},
        pull_missing=False, startup_timeout=120, **kw)


def identity(c: Any) -> tuple[str, str, int]:
    """What a container restart would change: its id, start time and PID 1."""
    c.reload()
    return c.id, c.attrs["State"]["StartedAt"], c.attrs["State"]["Pid"]


@contextlib.contextmanager
def kill_window(cluster: Cluster, node: str = "tidb-0") -> Iterator[Nemesis]:
    """A kill of ``node`` open until the block ends, then healed; no fault error."""
    fault = FaultSpec("kill", parse_selector(node), Schedule(Duration(0), Duration(3600)))
    n = Nemesis(cluster, [fault], Timeline(), 1.0, seed=3)
    n.start()
    try:
        wait_for("fault applied", lambda: n.active or n.errors, 60)
        assert not n.errors, n.errors
        yield n
    finally:
        n.stop()
    assert n.errors == []


def verified(n: Nemesis) -> dict[str, Any]:
    return dict(wait_for("fault verified", lambda: n.timeline.events("fault.verified"), 30)[0].data)


def test_process_kill_keeps_the_container_and_restarts_the_server(
        docker_engine: Any, standin_image: str, leftovers: Callable[[str], list[str]]) -> None:
    run_id = "kpm" + uuid.uuid4().hex[:6]
    cluster = start_cluster(settings_111(run_id, standin_image, kill_mode="process"),
                            docker_engine)
    try:
        c = cluster.container("tidb-0")
        before = identity(c)
        assert is_supervised(c.attrs)
        assert select_1(cluster)
        address = ips(cluster)["tidb-0"]

        with kill_window(cluster) as n:
            assert not select_1(cluster)
            applied = n.timeline.events("fault.applied")[0].data["detail"]
            path = "process:pidfd" if os.geteuid() == 0 else "process:exec"
            assert applied["paths"] == {"tidb-0": path}
            c.reload()
            assert c.status == "running"  # the supervisor waits; the container stays
            # the host stays with it: a peer's new connection is refused at once (as after a
            # container restart in a pod), where container mode's goes unanswered
            assert dial(cluster, "pd-0", address, TIDB_PORT) == "refused"
            found = verified(n)
            assert found["ok"] is True, found
            assert found["method"] == "server process"
        assert [e.kind for e in n.timeline.events("fault.")] == [
            "fault.inject", "fault.applied", "fault.verified", "fault.healed"]
        wait_for("SELECT 1 answers again", lambda: select_1(cluster), 60)
        # the same container, never restarted, the same PID 1 (the supervisor)
        assert identity(c) == before
        logs = c.logs().decode(errors="replace")
        assert logs.count(STARTED) == 2, logs[-2000:]

        c.stop(timeout=30)  # SIGTERM to the supervisor, forwarded to the server
        c.reload()
        # Docker's SIGKILL after the grace period would read 137: the server ended on
        # the forwarded SIGTERM instead
        assert c.attrs["State"]["ExitCode"] != 137, c.attrs["State"]
    finally:
        stop_cluster(cluster)
    assert leftovers(f"{LABEL_RUN}={run_id}") == []


def host_client_sees(host: str, port: int, timeout: float = 10.0) -> str:
    """What a host client gets from a node's published port: ``greeting`` (a server
    spoke), ``refused``, ``closed`` (docker-proxy accepted, then its own connection to the
    node was reset) or ``timeout`` (nothing answered: a hung client)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return "greeting" if sock.recv(64) else "closed"
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "closed"
    except TimeoutError:
        return "timeout"


def test_silent_kill_keeps_the_container_and_silences_its_address(
        docker_engine: Any, standin_image: str, leftovers: Callable[[str], list[str]]) -> None:
    """The default kill mode: the server dies in its container (a heal in milliseconds),
    and for the window its peers' connections go unanswered, as container mode's torn-down
    namespace leaves them (``test_faults_node``), while a host client is turned away at
    once, as by a stopped container's published port."""
    run_id = "ksl" + uuid.uuid4().hex[:6]
    settings = settings_111(run_id, standin_image)
    assert settings.kill_mode == "silent"  # the default
    cluster = start_cluster(settings, docker_engine)
    try:
        c = cluster.container("tidb-0")
        before = identity(c)
        assert select_1(cluster)
        address = ips(cluster)["tidb-0"]
        host, port = cluster.sql_endpoints()["tidb-0"]
        assert dial(cluster, "pd-0", address, TIDB_PORT) == "open"
        assert host_client_sees(host, port) == "greeting"

        with kill_window(cluster) as n:
            applied = n.timeline.events("fault.applied")[0].data["detail"]
            path = "process:pidfd" if os.geteuid() == 0 else "process:exec"
            assert applied["paths"] == {"tidb-0": path}
            assert applied["silenced"] == ["tidb-0"]
            c.reload()
            assert c.status == "running"
            # a peer: unanswered, not refused (process mode) -- the node is away
            assert dial(cluster, "pd-0", address, TIDB_PORT) == "timeout"
            # a host client: turned away at once, never left hanging
            assert host_client_sees(host, port) in ("refused", "closed")
            assert not select_1(cluster)
            found = verified(n)
            assert found["ok"] is True, found
            assert found["method"] == "server process + tcp connect"
        assert leftover_faults(cluster) == {}  # the silence is lifted
        wait_for("SELECT 1 answers again", lambda: select_1(cluster), 60)
        assert dial(cluster, "pd-0", address, TIDB_PORT) == "open"
        assert identity(c) == before
    finally:
        stop_cluster(cluster)
    assert leftovers(f"{LABEL_RUN}={run_id}") == []
