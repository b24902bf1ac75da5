"""The fixture chain end to end, in pytest subprocesses (pytester), with real Docker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from interrupt import interruptible

from pytest_tidb_ha.cluster.lifecycle import start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import LABEL_CLUSTER, LABEL_PID, ClusterSettings
from pytest_tidb_ha.scenario.model import Topology

pytestmark = pytest.mark.docker

Leftovers = Callable[[str], list[str]]


def image_args(image: str) -> list[str]:
    return [a for c in ("pd", "tikv", "tidb") for a in ("--tidb-image", f"{c}={image}")]


def remove_labelled(docker_engine: Any, label: str) -> None:
    """Safety net for a failing test: remove what *label* marks (ours only)."""
    flt = {"label": [label]}
    for c in docker_engine.containers.list(all=True, filters=flt, sparse=True):
        c.remove(force=True, v=True)
    for n in docker_engine.networks.list(filters=flt):
        n.remove()
    for v in docker_engine.volumes.list(filters=flt):
        v.remove(force=True)


@contextlib.contextmanager
def victim_session(pytester: pytest.Pytester, image: str, docker_engine: Any, ready: Path, *,
                   capture: bool) -> Iterator[subprocess.Popen[str]]:
    """Run ``test_victim.py`` as a separate pytest process the test can kill.

    The victim writes its pid (first word) to *ready* once its cluster is up. Whatever
    happens, the process is gone afterwards and anything labelled with its pid is removed.
    *capture* keeps its output (for the assertion messages) instead of discarding it.
    """
    cmd = interruptible([sys.executable, "-m", "pytest", "test_victim.py", "-p",
                         "no:cacheprovider", *image_args(image)])
    if capture:
        proc = subprocess.Popen(cmd, cwd=pytester.path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    else:
        proc = subprocess.Popen(cmd, cwd=pytester.path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if ready.exists():
            remove_labelled(docker_engine, f"{LABEL_PID}={ready.read_text().split()[0]}")


def wait_until_up(proc: subprocess.Popen[str], ready: Path, timeout: float = 240) -> None:
    """Poll until the victim wrote *ready*; fail at once if it died, or after *timeout*."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            output = proc.communicate()[0] if proc.stdout is not None else None
            raise AssertionError(output[-3000:] if output is not None
                                 else "the victim session ended before its cluster was up")
        assert time.monotonic() < deadline, "the victim's cluster did not come up"
        time.sleep(0.5)
    time.sleep(0.2)  # the file exists: let the victim finish writing it


def test_tests_share_one_cluster_with_their_own_databases(
    pytester: pytest.Pytester, standin_image: str, leftovers: Leftovers, docker_engine: Any
) -> None:
    out = pytester.path / "seen.txt"
    pytester.makepyfile(f"""
        def record(cluster, client, dsn):
            rows = client.query("SELECT DATABASE() AS db")
            with open({str(out)!r}, "a") as f:
                f.write(f"{{cluster.name}} {{cluster.database}} {{dsn}} {{cluster.can_control_nodes}}\\n")

        def test_one(tidb_cluster, tidb_client, tidb_dsn):
            record(tidb_cluster, tidb_client, tidb_dsn)
            assert [n.name for n in tidb_cluster.nodes] == ["pd-0", "tikv-0", "tidb-0"]

        def test_two(tidb_cluster, tidb_client, tidb_dsn):
            record(tidb_cluster, tidb_client, tidb_dsn)
            assert tidb_client.answering() == ["tidb-0"]
    """)
    try:
        result = pytester.runpytest_subprocess(*image_args(standin_image), "-p", "no:cacheprovider",
                                               timeout=300)
        result.assert_outcomes(passed=2)
        lines = [line.split() for line in out.read_text().splitlines()]
        assert len({name for name, *_ in lines}) == 1  # one cluster, reused
        assert lines[0][1] != lines[1][1]  # own database per test
        for _, db, dsn, control in lines:
            assert dsn.startswith("mysql://root@127.0.0.1:")
            assert dsn.endswith("/" + db)
            assert control == "True"
    finally:
        names = {line.split()[0] for line in out.read_text().splitlines()} if out.exists() else set()
        for name in names:
            remove_labelled(docker_engine, f"{LABEL_CLUSTER}={name}")
    for name in names:
        assert leftovers(f"{LABEL_CLUSTER}={name}") == []


def test_marker_topology_sizes_the_cluster(pytester: pytest.Pytester, standin_image: str,
                                           docker_engine: Any, leftovers: Leftovers) -> None:
    out = pytester.path / "seen.txt"
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.tidb_cluster(tidb=2)
        def test_two_tidb(tidb_cluster):
            open({str(out)!r}, "w").write(tidb_cluster.name)
            assert len(tidb_cluster.nodes_of("tidb")) == 2
            assert len(tidb_cluster.nodes_of("pd")) == 1
    """)
    try:
        result = pytester.runpytest_subprocess(*image_args(standin_image), timeout=300)
        result.assert_outcomes(passed=1)
    finally:
        if out.exists():
            remove_labelled(docker_engine, f"{LABEL_CLUSTER}={out.read_text()}")
    assert leftovers(f"{LABEL_CLUSTER}={out.read_text()}") == []


def test_sigkilled_session_leaves_resources_the_next_session_reaps(
    pytester: pytest.Pytester, standin_image: str, docker_engine: Any, leftovers: Leftovers
) -> None:
    ready = pytester.path / "ready.txt"
    pytester.makepyfile(test_victim=f"""
        import os, time

        def test_hangs(tidb_cluster):
            open({str(ready)!r}, "w").write(f"{{os.getpid()}} {{tidb_cluster.name}}")
            time.sleep(600)
    """)
    with victim_session(pytester, standin_image, docker_engine, ready, capture=False) as proc:
        wait_until_up(proc, ready)
        pid, _name = ready.read_text().split()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        left = leftovers(f"{LABEL_PID}={pid}")
        assert any(x.startswith("container ") for x in left)
        assert any(x.startswith("network ") for x in left)
        assert any(x.startswith("volume ") for x in left)

        pytester.makepyfile(test_next="""
            def test_next(tidb_cluster_pool):
                tidb_cluster_pool.docker()  # the first contact with the engine reaps
        """)
        result = pytester.runpytest_subprocess("test_next.py", timeout=120)
        result.assert_outcomes(passed=1)
        assert leftovers(f"{LABEL_PID}={pid}") == []


def test_keep_cluster_keeps_it_and_says_how_to_reach_and_remove_it(
    pytester: pytest.Pytester, standin_image: str, docker_engine: Any, leftovers: Leftovers
) -> None:
    out = pytester.path / "name.txt"
    pytester.makepyfile(f"""
        def test_keep(tidb_cluster):
            open({str(out)!r}, "w").write(tidb_cluster.name)
    """)
    try:
        result = pytester.runpytest_subprocess(*image_args(standin_image), "--ha-keep-cluster",
                                               "--log-cli-level=WARNING", timeout=300)
        result.assert_outcomes(passed=1)
        name = out.read_text()
        assert any(x.startswith("container ") for x in leftovers(f"{LABEL_CLUSTER}={name}"))
        result.stdout.fnmatch_lines([
            f"*cluster {name} kept running:*",
            "*tidb-0: mysql -h 127.0.0.1 -P * -u root*",
            f"*docker rm -f -v $(docker ps -aq --filter label={LABEL_CLUSTER}={name})*",
        ])
    finally:
        if out.exists():
            remove_labelled(docker_engine, f"{LABEL_CLUSTER}={out.read_text()}")


def test_attach_mode_starts_nothing(pytester: pytest.Pytester, standin_image: str,
                                    docker_engine: Any, leftovers: Leftovers) -> None:
    settings = ClusterSettings(run_id="attach" + str(os.getpid()), topology=Topology(1, 1, 1),
                               images={c: standin_image for c in ("pd", "tikv", "tidb")},
                               pull_missing=False)
    cluster = start_cluster(settings, docker_engine)
    try:
        host, port = cluster.sql_endpoints()["tidb-0"]
        pd_url = cluster.pd_urls()[0]
        pid_file = pytester.path / "pid.txt"
        pytester.makepyfile(f"""
            import os
            from pytest_tidb_ha.cluster import roles

            def test_attached(tidb_cluster, tidb_client):
                open({str(pid_file)!r}, "w").write(str(os.getpid()))
                assert not tidb_cluster.can_control_nodes
                assert tidb_client.answering() == ["tidb-0"]
                assert roles.pd_members(tidb_cluster) == ["pd-0"]
                import docker
                mine = {{"label": [f"{LABEL_PID}={{os.getpid()}}"]}}
                assert docker.from_env().containers.list(all=True, filters=mine) == []
        """)
        result = pytester.runpytest_subprocess(f"--tidb-dsn=mysql://root@{host}:{port}",
                                               f"--tidb-pd-url={pd_url}", timeout=120)
        result.assert_outcomes(passed=1)
        # Nothing labelled by the attached session's process exists.
        assert leftovers(f"{LABEL_PID}={pid_file.read_text()}") == []
    finally:
        stop_cluster(cluster)


def test_reused_cluster_is_whole_again_for_the_next_test(
    pytester: pytest.Pytester, standin_image: str, docker_engine: Any, leftovers: Leftovers
) -> None:
    out = pytester.path / "seen.txt"
    pytester.makepyfile(f"""
        def test_breaks_it(tidb_cluster):
            open({str(out)!r}, "a").write(tidb_cluster.name + "\\n")
            tidb_cluster.kill_node("tidb-0")      # a test that failed before healing its faults
            tidb_cluster.container("pd-0").pause()

        def test_gets_it_whole(tidb_cluster, tidb_client):
            open({str(out)!r}, "a").write(tidb_cluster.name + "\\n")
            assert tidb_cluster.state("tidb-0") == "running"
            assert tidb_cluster.state("pd-0") == "running"
            assert tidb_client.answering() == ["tidb-0"]
    """)
    try:
        result = pytester.runpytest_subprocess(*image_args(standin_image), timeout=300)
        result.assert_outcomes(passed=2)
        names = out.read_text().split()
        assert len(names) == 2
        assert names[0] == names[1]
    finally:
        for name in set(out.read_text().split()) if out.exists() else ():
            remove_labelled(docker_engine, f"{LABEL_CLUSTER}={name}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_session_removes_its_cluster(
    pytester: pytest.Pytester, standin_image: str, docker_engine: Any, leftovers: Leftovers,
    signum: int,
) -> None:
    ready = pytester.path / "ready.txt"
    pytester.makepyfile(test_victim=f"""
        import os, time

        def test_hangs(tidb_cluster):
            open({str(ready)!r}, "w").write(str(os.getpid()))
            time.sleep(600)
    """)
    with victim_session(pytester, standin_image, docker_engine, ready, capture=True) as proc:
        wait_until_up(proc, ready)
        pid = ready.read_text()
        assert leftovers(f"{LABEL_PID}={pid}")
        os.kill(proc.pid, signum)
        output, _ = proc.communicate(timeout=120)
        assert leftovers(f"{LABEL_PID}={pid}") == [], output[-3000:]
