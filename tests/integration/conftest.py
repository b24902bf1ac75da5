"""Integration-test helpers: the stand-in image and a check that nothing leaked.

The stand-in image plays all three roles: the one ``--standin`` built (repo conftest), else
``TIDB_HA_TEST_IMAGE``, else ``tidb-standin:latest`` (``bash tests/standin/build.sh``).
Tests skip (with the build command) when the image is absent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

DEFAULT_STANDIN_IMAGE = "tidb-standin:latest"


def standin_image_ref() -> str:
    return os.environ.get("TIDB_HA_TEST_IMAGE", DEFAULT_STANDIN_IMAGE)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A pinged docker SDK client (the test skips with the reason when there is none)."""
    from pytest_tidb_ha.cluster.lifecycle import DockerUnavailable, docker_client

    try:
        client = docker_client()
    except DockerUnavailable as exc:
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def standin_image(docker_engine: Any, request: pytest.FixtureRequest) -> str:
    """The stand-in image: the one ``--standin`` built, else ``TIDB_HA_TEST_IMAGE``/latest."""
    import docker.errors

    from pytest_tidb_ha.stash import ha_options

    images = set(ha_options(request.config).images.values())
    ref = images.pop() if len(images) == 1 else standin_image_ref()
    try:
        docker_engine.images.get(ref)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {ref} is missing: build it with `bash tests/standin/build.sh`")
    return ref


@pytest.fixture
def leftovers(docker_engine: Any) -> Callable[[str], list[str]]:
    """``leftovers("key=value")``: names of containers, networks, volumes with that label."""

    def find(label: str) -> list[str]:
        flt = {"label": [label]}
        return (
            [f"container {c.attrs['Names'][0].lstrip('/')}"
             for c in docker_engine.containers.list(all=True, filters=flt, sparse=True)]
            + [f"network {n.name}" for n in docker_engine.networks.list(filters=flt)]
            + [f"volume {v.name}" for v in docker_engine.volumes.list(filters=flt)]
        )

    return find
