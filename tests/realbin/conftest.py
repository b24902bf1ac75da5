"""Fixtures of the real-binary tests (``realbin`` marker; run with ``--realbin``).

The repository's conftest builds the image once per session (``--realbin``) and points
the plugin at it for all three components; the tests here then use the plugin's own
fixtures (``tidb_cluster``, ``tidb``, markers) unchanged. Without ``--realbin`` every
``realbin`` test is skipped with the command that runs it.

For the differential tests the same session also starts a stand-in cluster (the image
``tests/standin/build.sh`` makes, reporting v7.5.0 -- the release of the real
tidb-server) with the plugin's own ``start_cluster``; it lives for one test module only,
so the HA tests after it have the machine to the real cluster.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from pytest_tidb_ha.cluster.handle import Cluster
from pytest_tidb_ha.cluster.lifecycle import start_cluster, stop_cluster
from pytest_tidb_ha.cluster.pool import ClusterPool
from pytest_tidb_ha.cluster.specs import ClusterSettings
from pytest_tidb_ha.scenario.model import Topology

HERE = Path(__file__).resolve().parent
STANDIN_BUILD = HERE.parent / "standin" / "build.sh"
#: The HA topology of the issue: 3 PD, the one store, 2 TiDB.
HA_TOPOLOGY = Topology(pd=3, tikv=1, tidb=2)
#: The stand-in plays the release the real tidb-server is.
STANDIN_ENV = MappingProxyType({"STANDIN_VERSION": "v7.5.0", "STANDIN_TIME_SCALE": "1.0"})
RUN_HINT = "bash tests/realbin/build.sh; pytest tests/realbin --realbin"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--realbin", default=False):
        return
    skip = pytest.mark.skip(reason=f"real-binary test: needs --realbin ({RUN_HINT})")
    for item in items:
        if item.get_closest_marker("realbin") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def realbin_image(request: pytest.FixtureRequest) -> str:
    """The image ``--realbin`` built (the plugin already uses it for every component)."""
    from pytest_tidb_ha.stash import ha_options

    refs = set(ha_options(request.config).image_overrides.values())
    if len(refs) != 1 or not next(iter(refs)).startswith("tidb-realbin:"):
        pytest.skip(f"needs --realbin ({RUN_HINT})")
    return refs.pop()


@pytest.fixture(scope="session")
def standin_image_ref() -> str:
    """The stand-in image for the differential side (build.sh: ~1 s when current)."""
    done = subprocess.run(["bash", str(STANDIN_BUILD)], capture_output=True, text=True,
                          timeout=900, check=False)
    ref = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not ref:
        pytest.fail(f"{STANDIN_BUILD} failed: {done.stderr[-2000:]}", pytrace=False)
    return ref


@pytest.fixture(scope="session")
def realbin_cluster(realbin_image: str, tidb_cluster_settings: ClusterSettings,
                    tidb_cluster_pool: ClusterPool) -> Cluster:
    """The real-binary 3/1/2 cluster -- the same pool entry the HA tests' ``tidb_cluster`` gets."""
    return tidb_cluster_pool.get(dataclasses.replace(tidb_cluster_settings, topology=HA_TOPOLOGY))


@pytest.fixture(scope="module")
def standin_cluster(standin_image_ref: str, tidb_cluster_settings: ClusterSettings,
                    tidb_cluster_pool: ClusterPool) -> Iterator[Cluster]:
    """A stand-in 3/1/2 cluster reporting v7.5.0, stopped when the module is done."""
    images = MappingProxyType({c: standin_image_ref for c in ("pd", "tikv", "tidb")})
    env = MappingProxyType({c: STANDIN_ENV for c in ("pd", "tikv", "tidb")})
    settings = dataclasses.replace(tidb_cluster_settings, topology=HA_TOPOLOGY, images=images,
                                   env=env, name_prefix="tidb-ha-twin")
    cluster = start_cluster(settings, tidb_cluster_pool.docker())
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="module")
def twins(realbin_cluster: Cluster, standin_cluster: Cluster) -> dict[str, Any]:
    """``{"real": cluster, "standin": cluster}``: the two sides of every differential test."""
    return {"real": realbin_cluster, "standin": standin_cluster}
