"""Start/readiness/roles/teardown against the stand-in image, in real Docker."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pytest_tidb_ha.cluster import roles
from pytest_tidb_ha.cluster.lifecycle import ClusterStartError, start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import LABEL_CLUSTER, LABEL_RUN, ClusterSettings
from pytest_tidb_ha.scenario.model import Topology

pytestmark = pytest.mark.docker


def settings(image: str, topology: Topology, **kw: Any) -> ClusterSettings:
    return ClusterSettings(
        run_id="it" + uuid.uuid4().hex[:6],
        topology=topology,
        images={c: image for c in ("pd", "tikv", "tidb")},
        pull_missing=False,
        startup_timeout=kw.pop("startup_timeout", 120),
        **kw,
    )


def test_332_cluster_comes_up_answers_on_every_tidb_and_leaves_nothing(
    docker_engine: Any, standin_image: str, leftovers: Callable[[str], list[str]]
) -> None:
    s = settings(standin_image, Topology(3, 3, 2))
    cluster = start_cluster(s, docker_engine)
    try:
        assert [n.name for n in cluster.nodes] == [
            "pd-0", "pd-1", "pd-2", "tikv-0", "tikv-1", "tikv-2", "tidb-0", "tidb-1"]
        client = cluster.client()
        for node in ("tidb-0", "tidb-1"):
            rows = client.query("SELECT 1", node=node)
            assert [str(v) for row in rows for v in row.values()] == ["1"], (node, rows)
        assert sorted(client.answering()) == ["tidb-0", "tidb-1"]
        assert roles.pd_members(cluster) == ["pd-0", "pd-1", "pd-2"]
        leader = roles.pd_leader(cluster)
        assert leader in ("pd-0", "pd-1", "pd-2")
        assert sorted([*roles.pd_followers(cluster), leader]) == ["pd-0", "pd-1", "pd-2"]
        stores = roles.tikv_stores(cluster)
        assert sorted(s["node"] for s in stores) == ["tikv-0", "tikv-1", "tikv-2"]
        assert {s["state_name"] for s in stores} == {"Up"}
        assert roles.ddl_owner(cluster) in ("tidb-0", "tidb-1")
        # Every published port listens on loopback only.
        for n in cluster.nodes:
            bindings = cluster.container(n.name).attrs["HostConfig"]["PortBindings"]
            assert {b["HostIp"] for v in bindings.values() for b in v} == {"127.0.0.1"}
        assert any(x.startswith("volume ") for x in leftovers(f"{LABEL_CLUSTER}={cluster.name}"))
    finally:
        stop_cluster(cluster)
    assert leftovers(f"{LABEL_RUN}={s.run_id}") == []


def test_restart_keeps_host_ports_and_client_fails_over(docker_engine: Any, standin_image: str,
        leftovers: Callable[[str], list[str]]) -> None:
    s = settings(standin_image, Topology(1, 1, 2))
    cluster = start_cluster(s, docker_engine)
    try:
        before = cluster.sql_endpoints()
        client = cluster.client(connect_timeout=1, read_timeout=5)
        cluster.kill_node("tidb-0")
        assert cluster.state("tidb-0").startswith("exited")
        assert client.query("SELECT 1")  # answered by tidb-1
        assert client.answering() == ["tidb-1"]
        cluster.start_node("tidb-0")
        assert cluster.sql_endpoints() == before  # pinned ports survive the restart
        deadline = time.monotonic() + 60
        while "tidb-0" not in client.answering():
            assert time.monotonic() < deadline, cluster.logs("tidb-0", tail=30)
            time.sleep(0.5)
    finally:
        stop_cluster(cluster)
    assert leftovers(f"{LABEL_RUN}={s.run_id}") == []


def test_missing_image_fails_at_once_and_leaks_nothing(docker_engine: Any, standin_image: str,
        leftovers: Callable[[str], list[str]]) -> None:
    s = settings(standin_image, Topology(1, 1, 1))
    s = dataclasses.replace(s, images={**s.images, "tidb": "tidb-ha-no-such-image:never"})
    began = time.monotonic()
    with pytest.raises(ClusterStartError, match="tidb-ha-no-such-image:never is not present"):
        start_cluster(s, docker_engine)
    assert time.monotonic() - began < 10
    assert leftovers(f"{LABEL_RUN}={s.run_id}") == []


def test_component_that_exits_fails_fast_with_its_log_tail(docker_engine: Any, standin_image: str,
        leftovers: Callable[[str], list[str]]) -> None:
    script = "echo tikv-boom-marker >&2; exit 3"
    s = settings(standin_image, Topology(1, 1, 1), startup_timeout=120,
                 entrypoints={"tikv": ("/bin/sh", "-c", script, "--")})
    began = time.monotonic()
    with pytest.raises(ClusterStartError) as info:
        start_cluster(s, docker_engine)
    assert time.monotonic() - began < 60  # not the 120 s deadline: the exit is noticed
    text = str(info.value)
    assert "tikv-0 exited(3)" in text
    assert "tikv-boom-marker" in text  # the log tail is in the story
    assert leftovers(f"{LABEL_RUN}={s.run_id}") == []


def test_deadline_expiry_tells_the_story(docker_engine: Any, standin_image: str,
        leftovers: Callable[[str], list[str]]) -> None:
    # PD that never answers: a container that just sleeps under the PD's name.
    s = settings(standin_image, Topology(1, 1, 1), startup_timeout=3,
                 entrypoints={"pd": ("/bin/sh", "-c", "echo pd-silent-marker; exec sleep 600", "--")})
    with pytest.raises(ClusterStartError) as info:
        start_cluster(s, docker_engine)
    text = str(info.value)
    assert "timed out after 3s waiting for PD members ['pd-0'] healthy" in text
    assert "pd-0 [running]" in text
    assert "pd-silent-marker" in text
    assert leftovers(f"{LABEL_RUN}={s.run_id}") == []
