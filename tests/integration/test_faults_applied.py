"""A fault that cannot be applied fails the test; the plugin builds its own helper image.

Acceptance of issue 14, item 1: a case with a partition, run with
``--ha-fault-helper-image`` naming an image that does not exist, fails and names the
fault; the same case passes with the default. And the default helper image -- what a
non-root user (the GitHub runner) gets -- is built by the plugin when missing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.faults import helper_image
from pytest_tidb_ha.faults.netns import HelperRunner

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
CONFTEST = f'''
import importlib.util
import sys

_spec = importlib.util.spec_from_file_location("tidb_ha_repo_conftest", {str(REPO / "conftest.py")!r})
_mod = importlib.util.module_from_spec(_spec)
sys.modules["tidb_ha_repo_conftest"] = _mod
_spec.loader.exec_module(_mod)
pytest_plugins = ["tidb_ha_repo_conftest"]
'''
CASE = """
workloads:
  - {type: sysbench, db: applied, tableNum: 1, tableSize: 2000, threads: 1}
cases:
  - name: partition
    warmUpTime: 0s
    faultType: network_partition
    selector: "tikv(random)_to_all"
    faultDuration: 30s
    ddl:
      addIndex:
        - {db: applied, table: sbtest1, index_col_name: c, timeout: 20m}
"""


def run_case(pytester: pytest.Pytester, *extra: str) -> Any:
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", applied=CASE)
    return pytester.runpytest_subprocess(
        "applied.yaml", "--standin", "--ha-time-scale=0.1", "--ha-workload-scale=1",
        "--junitxml=junit.xml", "-p", "no:cacheprovider", "-rA", *extra, timeout=600)


def test_a_partition_with_a_missing_helper_image_fails_naming_the_fault(
        pytester: pytest.Pytester) -> None:
    missing = f"pytest-tidb-ha/no-such-helper:{uuid.uuid4().hex[:8]}"
    result = run_case(pytester, f"--ha-fault-helper-image={missing}")
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    assert "fault window(s) not applied as planned" in out, out[-3000:]
    assert "fault f0.0 network_partition window 1 on tikv(random)_to_all" in out
    assert f"{missing!r} is not present locally" in out
    assert "faults applied/planned: 0/1" in out


def test_the_same_partition_passes_with_the_default(pytester: pytest.Pytester) -> None:
    result = run_case(pytester)
    out = result.stdout.str()
    result.assert_outcomes(passed=1)
    assert "faults applied/planned: 1/1" in out, out[-3000:]


def test_the_default_helper_image_is_built_when_missing(docker_engine: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What a non-root user gets: the plugin builds its helper image and faults run from it.
    Here the base is the local stand-in base (no registry on this machine); on a GitHub
    runner it is alpine from Docker Hub plus the packages."""
    tag = f"pytest-tidb-ha/fault-helper-test:{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(helper_image, "DEFAULT_HELPER_IMAGE", tag)
    target = docker_engine.containers.run("tidb-standin-base:latest", ["sleep", "300"],
                                          detach=True, network_mode="none",
                                          labels={"org.pytest-tidb-ha.test": "1"})
    runner = HelperRunner(docker_engine, tag, run="applied-test")
    try:
        assert helper_image.ensure_helper_image(docker_engine, tag,
                                                base="tidb-standin-base:latest",
                                                network_mode="none") == tag
        image = docker_engine.images.get(tag)
        assert image.labels.get("org.pytest-tidb-ha.image") == "fault-helper"
        result = runner.run(target, "iptables -S >/dev/null && tc qdisc show >/dev/null && "
                                    "ip addr >/dev/null && python3 -c 'print(\"tools ok\")'")
        assert result.code == 0, result
        assert "tools ok" in result.output, result
    finally:
        runner.close()
        target.remove(force=True)
        docker_engine.images.remove(tag, force=True)
