"""Option resolution: CLI > env > ini > default, errors that name their source."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tidb_ha.options import (
    OPTION_SPECS,
    HAOptions,
    OptionError,
    parse_topology,
    resolve_options,
)
from pytest_tidb_ha.scenario.model import Topology


def test_defaults() -> None:
    opts = resolve_options({}, {}, {})
    assert opts.kill_mode == "silent"  # the supervised kill whose heal takes milliseconds
    assert opts == HAOptions(image_overrides=opts.image_overrides)
    assert dict(opts.images) == {"pd": "pingcap/pd:v8.5.7", "tikv": "pingcap/tikv:v8.5.7",
                                 "tidb": "pingcap/tidb:v8.5.7"}


def test_every_option_has_three_spellings() -> None:
    for spec in OPTION_SPECS:
        assert spec.cli == "--" + spec.dest.replace("_", "-")
        assert spec.env.startswith("PYTEST_TIDB_HA_")
    envs = {s.dest: s.env for s in OPTION_SPECS}
    assert envs["ha_time_scale"] == "PYTEST_TIDB_HA_TIME_SCALE"
    assert envs["tidb_version"] == "PYTEST_TIDB_HA_TIDB_VERSION"


@pytest.mark.parametrize(
    ("cli", "env", "ini", "expected"),
    [
        ({"ha_time_scale": "0.1"}, {"PYTEST_TIDB_HA_TIME_SCALE": "0.2"}, {"ha_time_scale": "0.3"}, 0.1),
        ({}, {"PYTEST_TIDB_HA_TIME_SCALE": "0.2"}, {"ha_time_scale": "0.3"}, 0.2),
        ({}, {}, {"ha_time_scale": "0.3"}, 0.3),
        ({}, {}, {"ha_time_scale": ""}, 1.0),
    ],
)
def test_precedence(cli: dict, env: dict, ini: dict, expected: float) -> None:  # type: ignore[type-arg]
    assert resolve_options(cli, env, ini).time_scale == expected


def test_all_values_parse() -> None:
    opts = resolve_options(
        {"tidb_version": "v8.1.0", "tidb_image": ["tidb=foo:1"], "ha_dry_run": True,
         "tidb_topology": "pd=3,tikv=3,tidb=2", "ha_artifacts": "out"},
        {"PYTEST_TIDB_HA_KEEP_CLUSTER": "yes", "PYTEST_TIDB_HA_ARTIFACTS_KEEP": "all",
         "PYTEST_TIDB_HA_NO_DOCKER": "skip", "PYTEST_TIDB_HA_WORKLOAD_SCALE": "0.01",
         "PYTEST_TIDB_HA_WORKLOAD_DRIVER": "python", "PYTEST_TIDB_HA_KILL_MODE": "process"},
        {"ha_fault_helper_image": "helper:1", "tidb_dsn": "mysql://root@127.0.0.1:4000",
         "tidb_pd_url": "http://127.0.0.1:2379/"},
    )
    assert opts.tidb_version == "v8.1.0"
    assert dict(opts.images) == {"pd": "pingcap/pd:v8.1.0", "tikv": "pingcap/tikv:v8.1.0",
                                 "tidb": "foo:1"}
    assert opts.dry_run
    assert opts.keep_cluster
    assert opts.topology == Topology(3, 3, 2)
    assert opts.artifacts == Path("out")
    assert (opts.artifacts_keep, opts.no_docker, opts.workload_scale) == ("all", "skip", 0.01)
    assert opts.fault_helper_image == "helper:1"
    assert opts.workload_driver == "python"
    assert opts.kill_mode == "process"
    assert opts.attach
    assert opts.pd_url == "http://127.0.0.1:2379"


def test_images_merge_per_component_and_markers_keep_explicit_images() -> None:
    opts = resolve_options({"tidb_image": ["tidb=cli:1"]},
                           {"PYTEST_TIDB_HA_TIDB_IMAGE": "tidb=env:1,pd=env:2"},
                           {"tidb_image": ["tikv=ini:3", "tidb=ini:1"]})
    assert dict(opts.images) == {"pd": "env:2", "tikv": "ini:3", "tidb": "cli:1"}
    assert dict(opts.images_for("v7.5.0")) == {"pd": "env:2", "tikv": "ini:3", "tidb": "cli:1"}
    plain = resolve_options({}, {}, {})
    assert plain.images_for("v7.5.0")["tidb"] == "pingcap/tidb:v7.5.0"
    assert plain.images_for(None) is plain.images


def test_image_override_follows_the_version_through_its_placeholder() -> None:
    opts = resolve_options({"tidb_image": ["tidb=mirror/tidb:{version}"],
                            "tidb_version": "v8.5.7"}, {}, {})
    assert opts.images["tidb"] == "mirror/tidb:v8.5.7"
    assert opts.images_for("v7.5.0")["tidb"] == "mirror/tidb:v7.5.0"
    assert opts.images_for("v7.5.0")["pd"] == "pingcap/pd:v7.5.0"


@pytest.mark.parametrize(
    ("cli", "env", "ini", "message"),
    [
        ({}, {"PYTEST_TIDB_HA_TIME_SCALE": "x"}, {}, "env PYTEST_TIDB_HA_TIME_SCALE='x': not a number"),
        ({"ha_time_scale": "0"}, {}, {}, "--ha-time-scale='0': must be a positive number"),
        ({}, {}, {"ha_workload_scale": "-1"}, "ini ha_workload_scale='-1': must be a positive"),
        ({"tidb_topology": "pd=3,tiflash=1"}, {}, {}, "--tidb-topology='pd=3,tiflash=1': 'tiflash=1'"),
        ({"tidb_topology": "pd=0"}, {}, {}, "--tidb-topology='pd=0': pd=0: at least 1"),
        ({"tidb_image": ["tidb"]}, {}, {}, "--tidb-image='tidb': 'tidb' is not COMPONENT=IMAGE"),
        ({}, {}, {"tidb_image": ["tiflash=x"]}, "ini tidb_image='tiflash=x'"),
        ({"tidb_dsn": "http://x"}, {}, {}, "--tidb-dsn='http://x': not a DSN"),
        ({}, {"PYTEST_TIDB_HA_DRY_RUN": "perhaps"}, {}, "env PYTEST_TIDB_HA_DRY_RUN='perhaps': not a boolean"),
        ({"ha_artifacts_keep": "some"}, {}, {}, "--ha-artifacts-keep='some': must be one of failed, all"),
        ({}, {}, {"ha_no_docker": "ignore"}, "ini ha_no_docker='ignore': must be one of fail, skip"),
        ({"ha_workload_driver": "go"}, {}, {},
         "--ha-workload-driver='go': must be one of auto, sysbench, python"),
        ({"tidb_pd_url": "http://pd:2379"}, {}, {}, "--tidb-pd-url needs --tidb-dsn"),
        ({"ha_kill_mode": "pod"}, {}, {},
         "--ha-kill-mode='pod': must be one of silent, container, process"),
        ({}, {"PYTEST_TIDB_HA_KILL_MODE": "Process"}, {},
         "env PYTEST_TIDB_HA_KILL_MODE='Process': must be one of silent, container, process"),
    ],
)
def test_errors_name_option_and_source(cli: dict, env: dict, ini: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(OptionError) as info:
        resolve_options(cli, env, ini)
    assert message in str(info.value)


def test_a_bad_lower_layer_is_not_read_when_a_higher_one_wins() -> None:
    # The env value wins, so the broken ini value is never parsed (like pytest-timeout).
    assert resolve_options({}, {"PYTEST_TIDB_HA_TIME_SCALE": "0.5"},
                           {"ha_time_scale": "x"}).time_scale == 0.5


def test_parse_topology_partial() -> None:
    assert parse_topology("tikv=3") == Topology(1, 3, 1)


def test_empty_values_count_as_unset() -> None:
    opts = resolve_options({"ha_time_scale": ""}, {"PYTEST_TIDB_HA_TIME_SCALE": " "},
                           {"ha_time_scale": "0.25"})
    assert opts.time_scale == 0.25


def test_shard_and_docker_hosts_resolve() -> None:
    from pytest_tidb_ha.shard import ShardSpec

    opts = resolve_options(
        {"ha_shard": "2/3"},
        {"PYTEST_TIDB_HA_DOCKER_HOSTS": "unix:///run/a.sock, tcp://127.0.0.1:2375,ssh://u@h"},
        {})
    assert opts.shard == ShardSpec(2, 3)
    assert opts.docker_hosts == ("unix:///run/a.sock", "tcp://127.0.0.1:2375", "ssh://u@h")
    assert resolve_options({}, {}, {}).docker_hosts == ()


@pytest.mark.parametrize(("value", "message"), [
    ("http//x", "not a Docker engine URL"),
    ("unix://run/a.sock", "unix:///absolute/path"),
    ("tcp://:2375", "no host"),
    ("tcp://h:99999", "bad port"),
    ("unix:///a,unix:///a", "given twice"),
    (" , ", "no URL"),
])
def test_docker_hosts_errors_name_the_source(value: str, message: str) -> None:
    with pytest.raises(OptionError, match=f"--ha-docker-hosts={value!r}: .*{message}"):
        resolve_options({"ha_docker_hosts": value}, {}, {})


def test_docker_hosts_contradict_attach_mode() -> None:
    with pytest.raises(OptionError, match="give one of them"):
        resolve_options({"ha_docker_hosts": "unix:///a", "tidb_dsn": "mysql://root@h:4000"}, {}, {})
