"""``--ha-kill-mode=process`` on a 1/1/1 stand-in cluster: the server dies, the container stays.

What a user of the mode relies on, observed end to end: the kill window makes SQL fail,
the container (same id, same start time) keeps running with no server in it (a peer's
new connection is refused, not left unanswered as in container mode), the heal
brings SQL back, ``docker logs`` shows both server starts, and ``docker stop`` still
stops the node through SIGTERM (the supervisor forwards it: the server's own exit, not
Docker's SIGKILL after the grace period). Nothing of the run survives it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from test_faults_harness import dial, ips, wait_for

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


def test_process_kill_keeps_the_container_and_restarts_the_server(
        docker_engine: Any, standin_image: str, leftovers: Callable[[str], list[str]]) -> None:
    run_id = "kpm" + uuid.uuid4().hex[:6]
    settings = ClusterSettings(
        run_id=run_id, topology=Topology(1, 1, 1),
        images={c: standin_image for c in ("pd", "tikv", "tidb")},
        env={c: {"STANDIN_TIME_SCALE": "0.3"} for c in ("pd", "tikv", "tidb")},
        pull_missing=False, startup_timeout=120, kill_mode="process")
    cluster = start_cluster(settings, docker_engine)
    try:
        c = cluster.container("tidb-0")
        c.reload()
        assert is_supervised(c.attrs)
        before = (c.id, c.attrs["State"]["StartedAt"], c.attrs["State"]["Pid"])
        assert select_1(cluster)
        address = ips(cluster)["tidb-0"]

        fault = FaultSpec("kill", parse_selector("tidb-0"), Schedule(Duration(0), Duration(3600)))
        n = Nemesis(cluster, [fault], Timeline(), 1.0, seed=3)
        n.start()
        try:
            wait_for("fault applied", lambda: n.active or n.errors, 60)
            assert not n.errors, n.errors
            assert not select_1(cluster)
            applied = n.timeline.events("fault.applied")[0].data["detail"]
            path = "process:pidfd" if os.geteuid() == 0 else "process:exec"
            assert applied["paths"] == {"tidb-0": path}
            c.reload()
            assert c.status == "running"  # the supervisor waits; the container stays
            # the host stays with it: a peer's new connection is refused at once (as after a
            # container restart in a pod), where container mode's goes unanswered
            assert dial(cluster, "pd-0", address, TIDB_PORT) == "refused"
            verified = wait_for("fault verified",
                                lambda: n.timeline.events("fault.verified"), 30)[0].data
            assert verified["ok"] is True, verified
            assert verified["method"] == "server process"
        finally:
            n.stop()
        assert n.errors == []
        assert [e.kind for e in n.timeline.events("fault.")] == [
            "fault.inject", "fault.applied", "fault.verified", "fault.healed"]
        wait_for("SELECT 1 answers again", lambda: select_1(cluster), 60)
        c.reload()
        # the same container, never restarted, the same PID 1 (the supervisor)
        assert (c.id, c.attrs["State"]["StartedAt"], c.attrs["State"]["Pid"]) == before
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
