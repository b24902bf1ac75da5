"""Fixtures for the stand-in's own tests: the image, and labelled containers on a private net.

``standin_image`` (session) runs ``tests/standin/build.sh`` once (idempotent; ~1 s when the
image is current).  ``standin`` (per test) hands out a `standin_helpers.StandinNet` whose
containers and network are removed in ``finally`` whatever the test's outcome (SIGTERM too).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin_helpers import StandinNet, log

from pytest_tidb_ha.cluster.sigterm import sigterm_as_interrupt


@pytest.fixture(scope="session")
def docker_client() -> Any:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        pytest.skip(f"no Docker engine: {exc}")
    return client


BUILD_SCRIPT = Path(__file__).parent / "build.sh"


@pytest.fixture(scope="session")
def standin_image(docker_client: Any) -> str:
    """The stand-in image ref: build.sh once per session (~1 s when already current)."""
    started = time.monotonic()
    try:
        done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                              timeout=900, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{BUILD_SCRIPT} did not finish within 900s", pytrace=False)
    ref = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not ref:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        pytest.fail(f"{BUILD_SCRIPT} failed (exit {done.returncode}):\n{tail}", pytrace=False)
    log.info("stand-in image %s (%.1fs)", ref, time.monotonic() - started)
    return ref


@pytest.fixture
def standin(request: pytest.FixtureRequest, docker_client: Any, standin_image: str) -> Iterator[StandinNet]:
    """A private network for this test's stand-in containers; everything removed after.

    SIGTERM (CI cancelling the run) unwinds like Ctrl-C while the fixture lives, as the
    plugin's own cluster fixtures do: without it Python dies at once and the containers
    wait for the next run's reaper.
    """
    with sigterm_as_interrupt():
        net = StandinNet(docker_client, standin_image, request.node.nodeid)
        try:
            yield net
        finally:
            net.close()


