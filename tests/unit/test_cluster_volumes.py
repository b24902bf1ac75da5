"""No code path lets Docker create a volume we did not name and label.

Docker creates a volume on its own in three cases: a path the image declares ``VOLUME``
(anonymous volume), a mount source without a ``/`` (read as a volume *name*, created
unlabelled when missing), and neither is removed with its container unless the removal
asks for it (``v=True``). Each is closed here; a volume Docker made on its own carries no
labels, and no reaper can find what a killed run left.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pytest_tidb_ha.cluster.lifecycle import image_volumes
from pytest_tidb_ha.cluster.specs import (
    BindMount,
    ClusterSettings,
    mounts,
    render_specs,
    with_image_volumes,
)
from pytest_tidb_ha.scenario.model import Topology

SRC = Path(__file__).resolve().parents[2] / "src" / "pytest_tidb_ha"


def specs() -> dict[str, Any]:
    s = ClusterSettings(run_id="r1", topology=Topology(1, 1, 1), pid=4242, host="box")
    return {spec.node: spec for spec in render_specs(s)}


def test_paths_the_image_declares_get_named_volumes() -> None:
    tikv = specs()["tikv-0"]
    got = with_image_volumes(tikv, ["/var/lib/extra", "/data", "/cache"])
    names = {v.target: v.volume for v in got.volumes}
    # /data is mounted already (the data volume); the two others get names of their own
    assert names["/data"] == f"{tikv.container_name}-data"
    assert names["/cache"] == f"{tikv.container_name}-vol0"
    assert names["/var/lib/extra"] == f"{tikv.container_name}-vol1"
    assert len(got.volumes) == 3


def test_an_image_without_volume_leaves_the_spec_alone() -> None:
    tidb = specs()["tidb-0"]
    assert with_image_volumes(tidb, []) is tidb


def test_image_volumes_reads_the_image_config() -> None:
    class Images:
        def get(self, ref: str) -> Any:
            volumes: dict[str, Any] | None = {"/b": {}, "/a": {}} if ref == "with" else None
            config = {"Volumes": volumes}
            return type("Image", (), {"attrs": {"Config": config}})()

    docker: Any = type("Docker", (), {"images": Images()})()
    assert image_volumes(docker, "with") == ["/a", "/b"]
    assert image_volumes(docker, "without") == []


def test_every_mount_source_is_a_labelled_volume_or_an_absolute_path() -> None:
    tidb = specs()["tidb-0"]
    spec = tidb.__class__(**{**tidb.__dict__, "binds": (BindMount(Path("imports"), "/import"),)})
    got = mounts(spec)
    assert got == [(str(Path("imports").absolute()), "/import", "ro")]
    assert all(src.startswith("/") for src, _t, _m in got)
    tikv = specs()["tikv-0"]
    assert mounts(tikv) == [(f"{tikv.container_name}-data", "/data", "rw")]


def test_every_container_removal_takes_its_anonymous_volumes() -> None:
    """``remove(force=True)`` without ``v=True`` leaves the container's anonymous volumes."""
    bad = []
    for path in SRC.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.remove\(force=True\)", line) and "volumes.get" not in line:
                bad.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert bad == []
