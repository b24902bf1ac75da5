"""Rendered container specs equal the reference command lines (reference §1.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tidb_ha.cluster.specs import (
    LABEL_CLUSTER,
    LABEL_COMPONENT,
    LABEL_HOST,
    LABEL_KEEP,
    LABEL_PID,
    LABEL_PLUGIN,
    LABEL_RUN,
    ClusterSettings,
    ContainerSpec,
    render_specs,
)
from pytest_tidb_ha.scenario.model import Topology


def settings(topology: Topology, **kw: object) -> ClusterSettings:
    """Container kill mode unless asked: the servers' own argv, as the images run them
    (the default silent mode puts the supervisor in front, test_kill_process_mode)."""
    kw.setdefault("kill_mode", "container")
    return ClusterSettings(run_id="r1", topology=topology, pid=4242, host="box", **kw)


def by_node(s: ClusterSettings) -> dict[str, ContainerSpec]:
    return {spec.node: spec for spec in render_specs(s)}


# The synthesized minimal-cluster lines of reference §1.5 with our node names.
REF_111 = {
    "pd-0": "--name=pd-0 --data-dir=/data/pd-0 --client-urls=http://0.0.0.0:2379 "
    "--advertise-client-urls=http://pd-0:2379 --peer-urls=http://0.0.0.0:2380 "
    "--advertise-peer-urls=http://pd-0:2380 --initial-cluster=pd-0=http://pd-0:2380 "
    "--config=/pd.toml",
    "tikv-0": "--addr=0.0.0.0:20160 --advertise-addr=tikv-0:20160 --status-addr=0.0.0.0:20180 "
    "--advertise-status-addr=tikv-0:20180 --pd-endpoints=pd-0:2379 --data-dir=/data/tikv-0 "
    "--config=/tikv.toml",
    "tidb-0": "--store=tikv --path=pd-0:2379 -P 4000 --status=10080 --advertise-address=tidb-0 "
    "--config=/tidb.toml",
}

_PDS = "pd-0:2379,pd-1:2379,pd-2:2379"
_INITIAL = "pd-0=http://pd-0:2380,pd-1=http://pd-1:2380,pd-2=http://pd-2:2380"
REF_332 = {
    **{
        f"pd-{i}": f"--name=pd-{i} --data-dir=/data/pd-{i} --client-urls=http://0.0.0.0:2379 "
        f"--advertise-client-urls=http://pd-{i}:2379 --peer-urls=http://0.0.0.0:2380 "
        f"--advertise-peer-urls=http://pd-{i}:2380 --initial-cluster={_INITIAL} --config=/pd.toml"
        for i in range(3)
    },
    **{
        f"tikv-{i}": f"--addr=0.0.0.0:20160 --advertise-addr=tikv-{i}:20160 "
        f"--status-addr=0.0.0.0:20180 --advertise-status-addr=tikv-{i}:20180 "
        f"--pd-endpoints={_PDS} --data-dir=/data/tikv-{i} --config=/tikv.toml"
        for i in range(3)
    },
    **{
        f"tidb-{i}": f"--store=tikv --path={_PDS} -P 4000 --status=10080 "
        f"--advertise-address=tidb-{i} --config=/tidb.toml"
        for i in range(2)
    },
}


@pytest.mark.parametrize(
    ("topology", "reference"),
    [(Topology(1, 1, 1), REF_111), (Topology(3, 3, 2), REF_332)],
    ids=["1-1-1", "3-3-2"],
)
def test_commands_equal_reference_lines(topology: Topology, reference: dict[str, str]) -> None:
    specs = render_specs(settings(topology))
    assert [s.node for s in specs] == list(reference)  # PDs, then TiKVs, then TiDBs
    for spec in specs:
        assert " ".join(spec.command) == reference[spec.node], spec.node


def test_entrypoints_are_the_real_images_entrypoints() -> None:
    for spec in render_specs(settings(Topology(1, 1, 1))):
        assert spec.entrypoint == (f"/{spec.component}-server",)


def test_entrypoint_override_per_component() -> None:
    s = settings(Topology(1, 1, 1), entrypoints={"tikv": ("/bin/sh", "-c", "exit 3", "--")})
    eps = {spec.component: spec.entrypoint for spec in render_specs(s)}
    assert eps["tikv"] == ("/bin/sh", "-c", "exit 3", "--")
    assert eps["pd"] == ("/pd-server",)


def test_images_default_to_pingcap_at_version() -> None:
    images = {s.component: s.image for s in render_specs(settings(Topology(1, 1, 1)))}
    assert images == {c: f"pingcap/{c}:v8.5.7" for c in ("pd", "tikv", "tidb")}


def test_labels_names_and_volumes() -> None:
    s = settings(Topology(1, 2, 1), labels={"team": "qa"})
    specs = by_node(s)
    tikv1 = specs["tikv-1"]
    assert tikv1.labels[LABEL_PLUGIN] == "pytest-tidb-ha"
    assert tikv1.labels[LABEL_RUN] == "r1"
    assert tikv1.labels[LABEL_PID] == "4242"
    assert tikv1.labels[LABEL_HOST] == "box"
    assert tikv1.labels[LABEL_COMPONENT] == "tikv"
    assert tikv1.labels[LABEL_CLUSTER] == s.cluster_name
    assert tikv1.labels["team"] == "qa"
    assert LABEL_KEEP not in tikv1.labels
    assert tikv1.container_name == f"{s.cluster_name}-tikv-1"
    assert [(v.volume, v.target) for v in tikv1.volumes] == [(f"{s.cluster_name}-tikv-1-data", "/data")]
    assert specs["tidb-0"].volumes == ()
    assert specs["pd-0"].ports == (2379,)
    assert specs["tikv-0"].ports == (20160, 20180)
    assert specs["tidb-0"].ports == (4000, 10080)


def test_keep_label() -> None:
    spec = render_specs(settings(Topology(1, 1, 1), keep=True))[0]
    assert spec.labels[LABEL_KEEP] == "true"


def test_small_machine_configs() -> None:
    specs = by_node(settings(Topology(1, 1, 1)))
    tikv = specs["tikv-0"].files["/tikv.toml"]
    assert tikv.count("max-open-files = 1024") == 2
    assert 'reserve-space = "0MB"' in tikv
    assert "[storage.block-cache]" in tikv
    assert "max-replicas = 1" in specs["pd-0"].files["/pd.toml"]
    assert "max-replicas = 3" in by_node(settings(Topology(3, 3, 2)))["pd-0"].files["/pd.toml"]
    assert "max-replicas = 2" in by_node(settings(Topology(1, 2, 1)))["pd-0"].files["/pd.toml"]


def test_env_and_import_dir_only_where_they_belong(tmp_path: Path) -> None:
    s = settings(
        Topology(1, 1, 2),
        env={"tidb": {"STANDIN_BUGS": "48303"}, "pd": {"STANDIN_TIME_SCALE": "0.1"}},
        import_dir=tmp_path,
    )
    specs = by_node(s)
    assert dict(specs["tidb-1"].env) == {"STANDIN_BUGS": "48303"}
    assert dict(specs["pd-0"].env) == {"STANDIN_TIME_SCALE": "0.1"}
    assert dict(specs["tikv-0"].env) == {}
    for node in ("tidb-0", "tidb-1"):
        (bind,) = specs[node].binds
        assert (bind.source, bind.target, bind.read_only) == (tmp_path, "/import", True)
    assert specs["pd-0"].binds == ()
    assert specs["tikv-0"].binds == ()


def test_cluster_name_carries_worker_and_differs_by_key() -> None:
    a = settings(Topology(1, 1, 1), worker="gw1")
    b = settings(Topology(1, 1, 1), worker="gw1", env={"tidb": {"STANDIN_BUGS": "46735"}})
    assert a.cluster_name.startswith("tidb-ha-r1-gw1-1-1-1-")
    assert a.cluster_name != b.cluster_name
    assert a.cluster_name == settings(Topology(1, 1, 1), worker="gw1").cluster_name


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"images": {"pd": "x", "tikv": "y"}}, "images lacks tidb"),
        ({"env": {"tiflash": {}}}, "unknown component.*tiflash"),
        ({"topology": Topology(0, 1, 1)}, "at least one node per component"),
    ],
)
def test_invalid_settings_are_rejected(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClusterSettings(run_id="r", **kw)
