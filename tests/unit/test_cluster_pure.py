"""Pure parts of the cluster layer: readiness parsing, address → node, roles parsing."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from loopback import closed_port

from pytest_tidb_ha.cluster.client import SQLError, TiDBClient, TiDBUnavailable, is_read_only
from pytest_tidb_ha.cluster.handle import Cluster, Node, host_ports_from_attrs, node_of_address
from pytest_tidb_ha.cluster.lifecycle import keep_instructions, pd_ready, stores_ready
from pytest_tidb_ha.cluster.roles import owner_from_info_all


def cluster() -> Cluster:
    nodes = [
        Node("pd-0", "pd", "c1", MappingProxyType({2379: 40001}), "10.0.0.2"),
        Node("tikv-0", "tikv", "c2", MappingProxyType({20160: 40002, 20180: 40003}), "10.0.0.3"),
        Node("tidb-0", "tidb", "c3", MappingProxyType({4000: 40004, 10080: 40005}), "10.0.0.4"),
        Node("tidb-1", "tidb", "c4", MappingProxyType({4000: 40006, 10080: 40007}), "10.0.0.5"),
    ]
    return Cluster("c", nodes, network_name="c")


def test_pd_ready_needs_cluster_id_all_members_and_health() -> None:
    members = {"header": {"cluster_id": 7}, "members": [{"name": "pd-0"}, {"name": "pd-1"}]}
    assert pd_ready(members, [{"name": "pd-0", "health": True}, {"name": "pd-1", "health": True}],
                    ["pd-0", "pd-1"])[0]
    assert not pd_ready({"header": {"cluster_id": 0}, "members": members["members"]}, None,
                        ["pd-0", "pd-1"])[0]
    ok, detail = pd_ready(members, None, ["pd-0", "pd-1", "pd-2"])
    assert not ok
    assert "pd-2" in detail
    ok, detail = pd_ready(members, [{"name": "pd-1", "health": False}], ["pd-0", "pd-1"])
    assert not ok
    assert "pd-1" in detail


def test_stores_ready_needs_every_store_up() -> None:
    answer = {"count": 2, "stores": [
        {"store": {"id": 1, "address": "tikv-0:20160", "state_name": "Up"}},
        {"store": {"id": 2, "address": "tikv-1:20160", "state_name": "Disconnected"}},
    ]}
    assert stores_ready(answer, ["tikv-0:20160"])[0]
    ok, detail = stores_ready(answer, ["tikv-0:20160", "tikv-1:20160"])
    assert not ok
    assert "Disconnected" in detail
    ok, detail = stores_ready(answer, ["tikv-2:20160"])
    assert not ok
    assert "tikv-2:20160" in detail
    assert not stores_ready(None, ["tikv-0:20160"])[0]


@pytest.mark.parametrize(
    ("address", "node"),
    [("tikv-0:20160", "tikv-0"), ("http://pd-0:2379", "pd-0"), ("10.0.0.5:4000", "tidb-1"),
     ("tidb-0", "tidb-0"), ("192.168.1.1:4000", None)],
)
def test_node_of_address(address: str, node: str | None) -> None:
    assert node_of_address(address, cluster().nodes) == node


def test_handle_urls_and_endpoints() -> None:
    c = cluster()
    assert c.pd_urls() == ["http://127.0.0.1:40001"]
    assert c.status_urls("tikv") == {"tikv-0": "http://127.0.0.1:40003"}
    assert c.status_urls("tidb") == {"tidb-0": "http://127.0.0.1:40005",
                                     "tidb-1": "http://127.0.0.1:40007"}
    assert c.sql_endpoints() == {"tidb-0": ("127.0.0.1", 40004), "tidb-1": ("127.0.0.1", 40006)}
    assert c.dsn() == "mysql://root@127.0.0.1:40004/"
    view = c.with_database("t_1")
    assert view.dsn() == "mysql://root@127.0.0.1:40004/t_1"
    assert c.database is None
    assert view.client().database == "t_1"
    assert not c.can_control_nodes  # no docker client
    with pytest.raises(KeyError, match="tidb-9"):
        c.node("tidb-9")
    assert [n.name for n in c.nodes_of("tidb")] == ["tidb-0", "tidb-1"]


def test_keep_instructions_say_how_to_connect_and_remove() -> None:
    text = keep_instructions(cluster())
    assert "mysql -h 127.0.0.1 -P 40004 -u root" in text
    assert "docker rm -f -v $(docker ps -aq --filter label=org.pytest-tidb-ha.cluster=c)" in text
    assert "docker volume rm" in text
    assert "docker network rm" in text


def test_host_ports_from_inspect_data() -> None:
    attrs = {"NetworkSettings": {"Ports": {"4000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5"}],
                                           "10080/tcp": None}}}
    assert host_ports_from_attrs(attrs) == {4000: 5}
    stopped = {"NetworkSettings": {"Ports": {}},
               "HostConfig": {"PortBindings": {"4000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "6"}]}}}
    assert host_ports_from_attrs(stopped) == {4000: 6}


def test_ddl_owner_from_info_all() -> None:
    c = cluster()
    answer = {"owner_id": "b", "servers_num": 2, "all_servers_info": {
        "a": {"ip": "tidb-0", "listening_port": 4000}, "b": {"ip": "tidb-1", "listening_port": 4000}}}
    assert owner_from_info_all(answer, c) == "tidb-1"
    by_ip = {"owner_id": "a", "all_servers_info": {"a": {"ip": "10.0.0.4", "listening_port": 4000}}}
    assert owner_from_info_all(by_ip, c) == "tidb-0"
    assert owner_from_info_all({"owner_id": "", "all_servers_info": {}}, c) is None


@pytest.mark.parametrize(
    ("sql", "read_only"),
    [("SELECT 1", True), ("  select * from t", True), ("SHOW IMPORT JOBS", True),
     ("ADMIN SHOW DDL JOBS", True), ("/* x */ SELECT 1", True), ("ADMIN CANCEL DDL JOBS 1", False),
     ("ALTER TABLE t ADD INDEX i (c)", False), ("IMPORT INTO t FROM '/import/a.csv'", False),
     ("INSERT INTO t VALUES (1)", False)],
)
def test_only_reads_are_resent_after_a_timeout(sql: str, read_only: bool) -> None:
    assert is_read_only(sql) is read_only


def test_client_reports_every_node_when_none_answers() -> None:
    client = TiDBClient({"tidb-0": ("127.0.0.1", closed_port()),
                         "tidb-1": ("127.0.0.1", closed_port())}, connect_timeout=1)
    with pytest.raises(TiDBUnavailable) as info:
        client.query("SELECT 1")
    assert info.value.code == 2003
    assert "tidb-0" in str(info.value)
    assert "tidb-1" in str(info.value)
    assert isinstance(info.value, SQLError)
    assert client.answering() == []
    with pytest.raises(KeyError):
        client.query("SELECT 1", node="tidb-7")


def test_sql_error_redacts_secrets() -> None:
    err = SQLError(8156, "bad url s3://b/p?access-key=AKIA&secret-access-key=shh", "tidb-0")
    assert "AKIA" not in str(err)
    assert "shh" not in str(err)
    assert "tidb-0" in str(err)


def test_ryuk_is_switched_off_unless_the_user_configured_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from testcontainers.core.config import testcontainers_config

    from pytest_tidb_ha.cluster.lifecycle import disable_ryuk_unless_enabled

    # public attributes only (the property's setter), restored by monkeypatch
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", False)
    monkeypatch.setattr(testcontainers_config, "tc_properties", {})
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    disable_ryuk_unless_enabled()
    import os

    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
    assert testcontainers_config.ryuk_disabled is True

    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", False)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "false")  # the user wants Ryuk
    disable_ryuk_unless_enabled()
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "false"
    assert testcontainers_config.ryuk_disabled is False
