"""Switches for the project's OWN test runs (not part of the shipped plugin).

``--standin``            build the stand-in image (tests/standin/build.sh, a TEST DOUBLE of
                         pingcap/pd, tikv, tidb) once per session and use it for all three
                         components of every cluster the plugin starts.
``--standin-bugs LIST``  bug modes (comma list: 48303,48546,46735) for every stand-in
                         container of the run (env ``STANDIN_BUGS``).
``--realbin``            build the real-binary image (tests/realbin/build.sh: REAL tidb-server
                         v7.5.0 and pd-server from their Go modules, and a TiKV-protocol store
                         on TiDB's unistore engine, NOT TiKV) once per session and use it for
                         all three components, exactly as ``--tidb-image`` would.

Every stand-in container also gets ``STANDIN_TIME_SCALE`` = the run's ``--ha-time-scale``
so lease TTLs and heartbeats shrink with the case's schedule.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

log = logging.getLogger("pytest_tidb_ha.standin")

BUILD_SCRIPT = Path(__file__).parent / "tests" / "standin" / "build.sh"
REALBIN_BUILD_SCRIPT = Path(__file__).parent / "tests" / "realbin" / "build.sh"
COMPONENTS = ("pd", "tikv", "tidb")
KNOWN_BUGS = ("48303", "48546", "46735")
STANDIN_IMAGE_KEY = pytest.StashKey[str]()
REALBIN_IMAGE_KEY = pytest.StashKey[tuple[str, float]]()
BUILD_TIMEOUT = 900.0
#: A cold Go build of tidb-server on 2 shared cores (tests/realbin/README.md).
REALBIN_BUILD_TIMEOUT = 3600.0
#: The release the real-binary image's tidb-server is (what ``--tidb-version`` reports).
REALBIN_TIDB_VERSION = "v7.5.0"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("standin", "stand-in cluster (this repository's own tests only)")
    group.addoption("--standin", action="store_true", default=False,
                    help="build the stand-in image (tests/standin/build.sh) and use it for "
                         "pd, tikv and tidb (default: off, the real pingcap images)")
    group.addoption("--standin-bugs", default="", metavar="LIST",
                    help="stand-in bug modes for every stand-in container, comma list of "
                         f"{','.join(KNOWN_BUGS)} (default: none)")
    group.addoption("--realbin", action="store_true", default=False,
                    help="build the real-binary image (tests/realbin/build.sh: real tidb-server "
                         "and pd-server, a unistore store in the TiKV position) and use it for "
                         "pd, tikv and tidb (default: off)")


def parse_bugs(text: str) -> tuple[str, ...]:
    """``"48303, #46735"`` -> ("48303", "46735"); unknown ids are a usage error."""
    bugs = tuple(part.strip().lstrip("#") for part in text.split(",") if part.strip())
    unknown = [b for b in bugs if b not in KNOWN_BUGS]
    if unknown:
        raise pytest.UsageError(
            f"--standin-bugs: unknown bug mode(s) {', '.join(unknown)} (known: {', '.join(KNOWN_BUGS)})"
        )
    return bugs


def build_image(script: Path = BUILD_SCRIPT, timeout: float = BUILD_TIMEOUT) -> str:
    """Run a build.sh (idempotent, fast when current) and return the image ref it prints."""
    try:
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{script} did not finish within {timeout:.0f}s") from exc
    ref = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not ref:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"{script} failed (exit {done.returncode}):\n{tail}")
    return ref


def use_image_for_all(config: pytest.Config, ref: str, version: str | None = None) -> None:
    """Point every component at *ref*, as ``--tidb-image`` for all three would.

    The images go into ``image_overrides``, which win over versions (a case that pins a
    version still gets this image).
    """
    try:
        from pytest_tidb_ha.recording import HA_OPTIONS_KEY
    except ImportError:  # plugin not installed: nothing to point at the image
        return
    opts = config.stash.get(HA_OPTIONS_KEY, None)
    if opts is not None:
        images = MappingProxyType({c: ref for c in COMPONENTS})
        changes: dict[str, Any] = {"images": images, "image_overrides": images}
        if version is not None:
            changes["tidb_version"] = version
        config.stash[HA_OPTIONS_KEY] = dataclasses.replace(opts, **changes)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """After the plugin resolved its options: point every component at the stand-in image.

    Done here (not only in the settings fixture) so a case that pins a version still gets
    the stand-in: the images go into ``image_overrides``, which win over versions.
    """
    bugs = parse_bugs(config.getoption("--standin-bugs") or "")
    if bugs and not config.getoption("--standin"):
        raise pytest.UsageError("--standin-bugs needs --standin")
    if config.getoption("--realbin"):
        if config.getoption("--standin"):
            raise pytest.UsageError("--realbin and --standin choose different images: use one")
        started = time.monotonic()
        try:
            ref = build_image(REALBIN_BUILD_SCRIPT, REALBIN_BUILD_TIMEOUT)
        except (OSError, RuntimeError) as exc:
            raise pytest.UsageError(f"--realbin: cannot build the real-binary image: {exc}") from None
        config.stash[REALBIN_IMAGE_KEY] = (ref, time.monotonic() - started)
        use_image_for_all(config, ref, REALBIN_TIDB_VERSION)
        return
    if not config.getoption("--standin"):
        return
    try:
        ref = build_image(BUILD_SCRIPT)
    except (OSError, RuntimeError) as exc:
        raise pytest.UsageError(f"--standin: cannot build the stand-in image: {exc}") from None
    config.stash[STANDIN_IMAGE_KEY] = ref
    use_image_for_all(config, ref)


def pytest_report_header(config: pytest.Config) -> list[str]:
    realbin = config.stash.get(REALBIN_IMAGE_KEY, None)
    if realbin is not None:
        return [f"real-binary cluster: image {realbin[0]} (real tidb-server {REALBIN_TIDB_VERSION} "
                "and pd-server; tikv-server is a unistore store, NOT TiKV), build/check "
                f"{realbin[1]:.0f}s"]
    ref = config.stash.get(STANDIN_IMAGE_KEY, None)
    if ref is None:
        return []
    bugs = ",".join(parse_bugs(config.getoption("--standin-bugs") or "")) or "none"
    return [f"stand-in cluster (TEST DOUBLE): image {ref}, bug modes: {bugs}"]


def standin_env(config: pytest.Config) -> dict[str, str]:
    """Environment of every stand-in container of this run."""
    from pytest_tidb_ha.recording import ha_options

    env = {"STANDIN_TIME_SCALE": repr(float(ha_options(config).time_scale))}
    bugs = parse_bugs(config.getoption("--standin-bugs") or "")
    if bugs:
        env["STANDIN_BUGS"] = ",".join(bugs)
    return env


@pytest.fixture(scope="session")
def tidb_cluster_settings(tidb_cluster_settings: Any, request: pytest.FixtureRequest) -> Any:
    """The plugin's settings, with the stand-in image and its env when ``--standin`` is on.

    ``--realbin`` changes nothing here but ``pull_missing``: the plugin already has the
    image for every component, and real binaries take no stand-in environment.
    """
    if request.config.stash.get(REALBIN_IMAGE_KEY, None) is not None:
        return dataclasses.replace(tidb_cluster_settings, pull_missing=False)
    ref = request.config.stash.get(STANDIN_IMAGE_KEY, None)
    if ref is None:
        return tidb_cluster_settings
    env = standin_env(request.config)
    merged = {
        component: MappingProxyType({**dict(tidb_cluster_settings.env.get(component, {})), **env})
        for component in COMPONENTS
    }
    log.info("stand-in cluster: image %s, env %s", ref, env)
    return dataclasses.replace(
        tidb_cluster_settings,
        images=MappingProxyType({c: ref for c in COMPONENTS}),
        env=MappingProxyType(merged),
        pull_missing=False,
    )
