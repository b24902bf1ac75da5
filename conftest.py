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

The release the stand-in plays travels the way the real one does, in the image tag: the
images are ``tidb-standin:<hash>-<version>`` (``build.sh --version``, the same programs with
``STANDIN_VERSION`` set) through the plugin's own ``--tidb-image COMPONENT=IMAGE:{version}``,
so ``--tidb-version`` and a case's or marker's version reach the containers unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import time
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_tidb_ha.options import HAOptions

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


def build_image(script: Path = BUILD_SCRIPT, timeout: float = BUILD_TIMEOUT,
                version: str | None = None) -> str:
    """Run a build.sh (idempotent, fast when current) and return the image ref it prints.

    With ``version`` (the stand-in's build.sh): the image tagged for that release
    (``<ref>-<version>``).
    """
    command = ["bash", str(script)] + (["--version", version] if version else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True,
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
        from pytest_tidb_ha.stash import HA_OPTIONS_KEY
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
    options_key: pytest.StashKey[HAOptions] | None = None
    try:
        from pytest_tidb_ha.stash import HA_OPTIONS_KEY
        options_key = HA_OPTIONS_KEY
    except ImportError:  # plugin not installed: nothing to point at the image
        pass
    opts = config.stash.get(options_key, None) if options_key is not None else None
    try:
        ref = build_image(BUILD_SCRIPT, version=opts.tidb_version if opts is not None else None)
    except (OSError, RuntimeError) as exc:
        raise pytest.UsageError(f"--standin: cannot build the stand-in image: {exc}") from None
    config.stash[STANDIN_IMAGE_KEY] = ref
    if opts is not None and options_key is not None:
        template = ref.removesuffix(f"-{opts.tidb_version}") + "-{version}"
        overrides = MappingProxyType({c: template for c in COMPONENTS})
        images = MappingProxyType({c: ref for c in COMPONENTS})
        config.stash[options_key] = dataclasses.replace(
            opts, images=images, image_overrides=overrides)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag the stand-in for every other version a collected case or marker asks for."""
    if STANDIN_IMAGE_KEY not in config.stash:
        return
    from pytest_tidb_ha.stash import CASE_KEY, ha_options

    session_version = ha_options(config).tidb_version
    versions = {case.version for item in items
                if (case := item.stash.get(CASE_KEY, None)) is not None and case.version}
    for version in sorted(versions - {session_version}):
        try:
            build_image(BUILD_SCRIPT, version=version)
        except (OSError, RuntimeError) as exc:
            raise pytest.UsageError(f"--standin: cannot tag the stand-in for {version}: {exc}") from None


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


TRIGGERS_JSON = "standin-triggers.json"


def _trigger_counts(cluster: Any) -> dict[str, dict[str, int]]:
    """Each TiDB's ``/standin/triggers`` (empty for a TiDB that does not answer)."""
    import json
    import urllib.request

    counts: dict[str, dict[str, int]] = {}
    for node, url in cluster.status_urls("tidb").items():
        try:
            with urllib.request.urlopen(f"{url}/standin/triggers", timeout=3) as answer:  # noqa: S310 - http status URL
                counts[node] = {str(k): int(v) for k, v in json.load(answer).items()}
        except (OSError, ValueError):
            counts[node] = {}
    return counts


@pytest.fixture(autouse=True)
def standin_triggers(request: pytest.FixtureRequest) -> Any:
    """``--standin``: how often each seed bug's physical trigger happened during the test.

    A fixed-mode pass proves nothing unless the trigger happened, so every test that runs on
    a stand-in cluster leaves ``standin-triggers.json`` in its artifacts folder: per bug, the
    triggers counted by the cluster's TiDBs between set-up and teardown (a TiDB restarted
    meanwhile counts from zero again).
    """
    if STANDIN_IMAGE_KEY not in request.config.stash or "tidb_cluster" not in request.fixturenames:
        yield None
        return
    import json

    cluster = request.getfixturevalue("tidb_cluster")
    record = request.getfixturevalue("ha_record")
    before = _trigger_counts(cluster)
    yield None
    after = _trigger_counts(cluster)
    total: dict[str, int] = {}
    for node, counts in after.items():
        for bug, count in counts.items():
            earlier = before.get(node, {}).get(bug, 0)
            total[bug] = total.get(bug, 0) + (count - earlier if count >= earlier else count)
    record.artifacts_dir.mkdir(parents=True, exist_ok=True)
    (record.artifacts_dir / TRIGGERS_JSON).write_text(json.dumps(total, indent=1) + "\n")


def owner_ttl(config: pytest.Config) -> dict[str, str]:
    """TiDB's own knob for the DDL owner's session TTL (``tidb_manager_ttl``; tidb-server's
    default is 60 s), scaled with the run (at least 2 s): the stand-in honours it as
    tidb-server does, and the plugin can read the owner's recovery time from the container
    like any user's setting. Keeping TiDB's proportion to the seeds' fault windows (60 s of a
    2 m PD partition) keeps #48546's trigger — a flush while the session cannot renew — as
    likely as on a real cluster."""
    from pytest_tidb_ha.stash import ha_options

    return {"tidb_manager_ttl": str(max(2, round(60 * ha_options(config).time_scale)))}


def standin_env(config: pytest.Config) -> dict[str, str]:
    """Environment of every stand-in container of this run."""
    from pytest_tidb_ha.stash import ha_options

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
        component: MappingProxyType({**dict(tidb_cluster_settings.env.get(component, {})), **env,
                                     **(owner_ttl(request.config) if component == "tidb" else {})})
        for component in COMPONENTS
    }
    log.info("stand-in cluster: image %s, env %s", ref, env)
    return dataclasses.replace(tidb_cluster_settings, env=MappingProxyType(merged),
                               pull_missing=False)
