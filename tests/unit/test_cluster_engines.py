"""--ha-docker-hosts without Docker: engine URLs, the lock order, leases, the pool on an engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.cluster import pool as pool_mod
from pytest_tidb_ha.cluster.engines import (
    Engine,
    EngineLease,
    lease_order,
    lock_dir_for_run,
    worker_number,
)
from pytest_tidb_ha.cluster.handle import Cluster
from pytest_tidb_ha.cluster.lifecycle import DockerUnavailable, keep_instructions
from pytest_tidb_ha.cluster.pool import ClusterPool
from pytest_tidb_ha.cluster.specs import ClusterSettings
from pytest_tidb_ha.faults.netns import engine_is_local
from pytest_tidb_ha.scenario.model import Topology


@pytest.mark.parametrize(("url", "here", "address", "publish"), [
    ("unix:///var/run/docker.sock", True, "127.0.0.1", "127.0.0.1"),
    ("tcp://127.0.0.1:2375", True, "127.0.0.1", "127.0.0.1"),
    ("tcp://localhost:2375", True, "127.0.0.1", "127.0.0.1"),
    ("ssh://ci@[::1]", True, "127.0.0.1", "127.0.0.1"),
    ("tcp://build-7.example:2376", False, "build-7.example", "0.0.0.0"),  # noqa: S104 - the expected published address
    ("ssh://ci@10.1.2.3", False, "10.1.2.3", "0.0.0.0"),  # noqa: S104 - the expected published address
])
def test_engine_address_follows_the_url(url: str, here: bool, address: str, publish: str) -> None:
    e = Engine(url)
    assert (e.on_this_machine, e.address, e.publish_ip) == (here, address, publish)


def test_faults_use_nsenter_only_on_a_unix_socket_engine() -> None:
    import docker

    unix = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    tcp = docker.DockerClient(base_url="tcp://127.0.0.1:1", version="1.41")
    assert engine_is_local(unix)
    assert not engine_is_local(tcp)


def test_lease_order_spreads_workers_over_engines() -> None:
    assert worker_number("gw3") == 3
    assert worker_number(None) == 0
    assert worker_number("x") == 0
    assert lease_order(0, 2, slots=2) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert lease_order(1, 2, slots=2) == [(0, 1), (0, 0), (1, 1), (1, 0)]
    assert lease_order(4, 3, slots=1) == [(0, 1), (0, 2), (0, 0)]


def test_leases_take_free_slots_and_release(tmp_path: Path) -> None:
    engines = ("unix:///a.sock", "unix:///b.sock")
    a = EngineLease(engines, lock_dir=tmp_path, worker="gw0")
    b = EngineLease(engines, lock_dir=tmp_path, worker="gw0")  # e.g. a restarted gw0
    c = EngineLease(engines, lock_dir=tmp_path, worker="gw1")
    assert a.acquire() == "unix:///a.sock"
    assert a.slot == 0
    assert b.acquire() == "unix:///b.sock"
    assert b.slot == 0
    assert c.acquire() == "unix:///b.sock"
    assert c.slot == 1
    a.release()
    d = EngineLease(engines, lock_dir=tmp_path, worker="gw5")
    assert d.acquire() == "unix:///a.sock"
    assert d.slot == 0


def test_a_dead_workers_lock_is_free_again(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from pytest_tidb_ha.cluster.engines import "
            "EngineLease; EngineLease(['unix:///a', 'unix:///b'], lock_dir=Path(sys.argv[1]), "
            "worker='gw0').acquire(); print('held')")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "held"
    assert EngineLease(["unix:///a", "unix:///b"], lock_dir=tmp_path,
                       worker="gw0").acquire() == "unix:///a"


def test_without_xdist_the_first_engine_and_no_lock(tmp_path: Path) -> None:
    assert lock_dir_for_run(tmp_path / "basetemp", None) is None
    assert lock_dir_for_run(tmp_path / "basetemp", "gw1") == tmp_path / "tidb-ha-engines"
    assert EngineLease(["unix:///a", "unix:///b"], lock_dir=None, worker=None).acquire() == "unix:///a"


class FakeEngines:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, dead: tuple[str, ...] = ()) -> None:
        self.reaped: list[str] = []
        self.started: list[ClusterSettings] = []
        self.stopped: list[str] = []
        self.dead = dead
        monkeypatch.setattr(pool_mod, "start_cluster", self.start)
        monkeypatch.setattr(pool_mod, "stop_cluster", lambda c, keep=False: self.stopped.append(c.name))
        monkeypatch.setattr(pool_mod, "reap_stale",
                            lambda docker, host=None: self.reaped.append(docker.url))

    def client(self, url: str) -> Any:
        if url in self.dead:
            raise DockerUnavailable(f"no Docker engine answers at {url}")

        class Client:
            def __init__(self) -> None:
                self.url = url

            def close(self) -> None:
                pass
        return Client()

    def start(self, settings: ClusterSettings, docker: Any) -> Cluster:
        assert docker.url == settings.engine
        self.started.append(settings)
        return Cluster(settings.cluster_name, [], settings=settings)


def test_pool_starts_on_its_engine_and_reaps_every_engine(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEngines(monkeypatch, dead=("tcp://127.0.0.1:9",))
    engines = ("unix:///a.sock", "tcp://build-7.example:2376", "tcp://127.0.0.1:9")
    base = ClusterSettings(run_id="r", worker="gw1", import_dir=tmp_path)
    pool = ClusterPool(base, engines=engines, lock_dir=tmp_path / "locks",
                       engine_factory=fake.client)
    cluster = pool.get(pool.settings_for(Topology()))
    (settings,) = fake.started
    assert settings.engine == "tcp://build-7.example:2376"  # gw1 -> engine 1
    assert (settings.address, settings.publish_ip, settings.import_dir) == \
        ("build-7.example", "0.0.0.0", None)  # noqa: S104 - the expected published address
    assert fake.reaped == ["tcp://build-7.example:2376", "unix:///a.sock"]  # the dead one skipped
    assert "docker -H tcp://build-7.example:2376 rm -f -v" in keep_instructions(cluster)
    other = EngineLease(engines, lock_dir=tmp_path / "locks", worker="gw1")
    assert other.acquire() == "tcp://127.0.0.1:9"  # engine 1's slot 0 is still leased
    other.release()
    pool.close()
    assert fake.stopped == [settings.cluster_name]
    again = EngineLease(engines, lock_dir=tmp_path / "locks", worker="gw1")
    assert again.acquire() == "tcp://build-7.example:2376"
    assert again.slot == 0


def test_pool_on_a_local_engine_keeps_loopback_and_the_import_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEngines(monkeypatch)
    base = ClusterSettings(run_id="r", worker=None, import_dir=tmp_path)
    pool = ClusterPool(base, engines=("unix:///b.sock", "unix:///a.sock"), lock_dir=None,
                       engine_factory=fake.client)
    pool.get(pool.settings_for(Topology()))
    (settings,) = fake.started
    assert (settings.engine, settings.address, settings.publish_ip, settings.import_dir) == \
        ("unix:///b.sock", "127.0.0.1", "127.0.0.1", tmp_path)
    pool.close()


def test_client_kwargs_point_every_client_at_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_tidb_ha.cluster.engines import client_kwargs

    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    monkeypatch.setenv("DOCKER_CERT_PATH", "/certs")
    kw = client_kwargs("tcp://127.0.0.1:2376")
    assert kw["environment"]["DOCKER_HOST"] == "tcp://127.0.0.1:2376"
    assert kw["environment"]["DOCKER_CERT_PATH"] == "/certs"
    assert kw["use_ssh_client"] is False
    assert client_kwargs("ssh://u@h")["use_ssh_client"] is True
