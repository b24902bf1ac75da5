"""The real-binary image holds what it says: real TiDB and PD builds, and our store.

* ``tidb_version()`` names the release and the commit of pingcap/tidb v7.5.0;
* ``go version -m`` on ``/tidb-server`` and ``/pd-server`` (copied out of the image)
  names the main modules ``github.com/pingcap/tidb`` and ``github.com/tikv/pd`` at the
  versions pinned in the wrapper go.mod files;
* PD reports its own release (a v8.1 alpha commit: README.md here says why) and the
  store registered with the version it stamps; the store says it is not TiKV;
* a second store is refused loudly (a unistore cannot join a cluster), so a topology the
  store cannot serve fails at start-up instead of corrupting the cluster;
* the store's guard is in the path TiDB uses: every 1PC and async-commit attempt of the
  real tidb-server fell back to 2PC (client-go's own counters), none committed that way.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.cluster.http import get_json, request
from pytest_tidb_ha.cluster.lifecycle import ClusterStartError, start_cluster
from pytest_tidb_ha.scenario.model import Topology

pytestmark = [pytest.mark.realbin, pytest.mark.docker]

HERE = Path(__file__).resolve().parent
TIDB_COMMIT = "069631e2ecfedc000ffb92c67207bea81380f020"
PD_RELEASE = "v8.1.0-alpha-4-g7179657d12"


def pinned(gomod: Path, module: str) -> str:
    """The version *module* is required at in a wrapper go.mod (pure)."""
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", gomod.read_text(), re.M)
    assert m, f"{module} not required in {gomod}"
    return m.group(1)


def copy_out(docker: Any, image: str, path: str, dest: Path) -> Path:
    container = docker.containers.create(image, entrypoint=["/bin/true"],
                                         labels={"org.pytest-tidb-ha.plugin": "pytest-tidb-ha"})
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            tar.extractall(dest, filter="data")
    finally:
        container.remove(force=True)
    return dest / Path(path).name


def test_tidb_version_is_the_real_release(realbin_cluster: Any) -> None:
    rows = realbin_cluster.client().query("SELECT tidb_version() AS v", database="")
    text = str(rows[0]["v"])
    assert "Release Version: v7.5.0" in text, text
    assert f"Git Commit Hash: {TIDB_COMMIT}" in text, text
    assert "Store: tikv" in text, text


@pytest.mark.skipif(shutil.which("go") is None, reason="no go toolchain for `go version -m`")
@pytest.mark.parametrize(("binary", "main", "gomod", "module"), [
    ("/tidb-server", "github.com/pingcap/tidb/cmd/tidb-server", "tidb/go.mod", "github.com/pingcap/tidb"),
    ("/pd-server", "github.com/tikv/pd/cmd/pd-server", "pd/go.mod", "github.com/tikv/pd"),
])
def test_go_version_m_names_the_modules(realbin_image: str, tidb_cluster_pool: Any,
                                        tmp_path: Path, binary: str, main: str, gomod: str,
                                        module: str) -> None:
    exe = copy_out(tidb_cluster_pool.docker(), realbin_image, binary, tmp_path)
    out = subprocess.run(["go", "version", "-m", str(exe)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert re.search(rf"^\s*path\s+{re.escape(main)}$", out, re.M), out[:2000]
    version = pinned(HERE / gomod, module)
    assert re.search(rf"^\s*mod\s+{re.escape(module)}\s+{re.escape(version)}\s", out, re.M), out[:2000]


def test_pd_and_store_versions(realbin_cluster: Any) -> None:
    url = realbin_cluster.pd_urls()[0]
    assert get_json(url + "/pd/api/v1/version")["version"] == PD_RELEASE
    stores = get_json(url + "/pd/api/v1/stores")["stores"]
    assert [s["store"]["version"] for s in stores] == ["7.5.0"], stores
    assert stores[0]["store"]["git_hash"] == TIDB_COMMIT, stores
    assert stores[0]["store"]["state_name"] == "Up", stores
    status = stores[0]["store"]["status_address"]
    assert status == "tikv-0:20180", stores


def commit_counters(cluster: Any) -> dict[str, float]:
    """client-go's 1PC and async-commit transaction counters summed over the TiDB nodes,
    ``"<metric>{type=...}" -> count``, from each node's ``/metrics``."""
    totals: dict[str, float] = {}
    for url in cluster.status_urls("tidb").values():
        status, body = request(url + "/metrics", timeout=10)
        assert status == 200, (url, status)
        for m in re.finditer(r'^tidb_tikvclient_(one_pc|async_commit)_txn_counter'
                             r'\{type="(\w+)"\} (\S+)$', body.decode(), re.M):
            key = f"{m.group(1)}{{type={m.group(2)}}}"
            totals[key] = totals.get(key, 0.0) + float(m.group(3))
    return totals


def test_the_store_answers_1pc_and_async_commit_as_2pc(realbin_cluster: Any) -> None:
    client = realbin_cluster.client()
    client.execute("CREATE DATABASE IF NOT EXISTS realbin_guard", timeout=30)
    client.execute("CREATE TABLE IF NOT EXISTS realbin_guard.t (id INT PRIMARY KEY, v INT)",
                   timeout=30)
    before = commit_counters(realbin_cluster)
    for i in range(5):  # autocommit single-row writes: TiDB tries 1PC for each
        client.execute(f"REPLACE INTO realbin_guard.t VALUES ({i}, {i})", timeout=30)
    after = commit_counters(realbin_cluster)
    assert after.get("one_pc{type=fallback}", 0) - before.get("one_pc{type=fallback}", 0) >= 5, \
        (before, after)
    assert after.get("one_pc{type=ok}", 0) == 0, after
    assert after.get("async_commit{type=ok}", 0) == 0, after
    client.execute("DROP DATABASE realbin_guard", timeout=30)


def test_a_second_store_is_refused(realbin_image: str, tidb_cluster_settings: Any,
                                   tidb_cluster_pool: Any) -> None:
    settings = dataclasses.replace(tidb_cluster_settings, topology=Topology(pd=1, tikv=2, tidb=1),
                                   name_prefix="tidb-ha-2stores", startup_timeout=120.0)
    with pytest.raises(ClusterStartError) as err:
        start_cluster(settings, tidb_cluster_pool.docker())
    text = str(err.value)
    assert re.search(r"tikv-[01] exited", text), text[-3000:]
    assert "one tikv per cluster" in text, text[-3000:]
