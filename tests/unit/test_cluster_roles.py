"""Role discovery asks every PD/TiDB in turn and never waits past its timeout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any

import pytest
from loopback import closed_port

from pytest_tidb_ha.cluster import roles
from pytest_tidb_ha.cluster.handle import Cluster, Node


def serve(answers: dict[str, Any], delay: float = 0.0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(delay)
            if self.path not in answers:
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(answers[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


PD_ANSWERS = {
    "/pd/api/v1/leader": {"name": "pd-1"},
    "/pd/api/v1/members": {"header": {"cluster_id": 1},
                           "members": [{"name": "pd-2"}, {"name": "pd-0"}, {"name": "pd-1"}]},
    "/pd/api/v1/stores": {"count": 2, "stores": [
        {"store": {"id": 5, "address": "tikv-1:20160", "state_name": "Up"}},
        {"store": {"id": 4, "address": "172.20.0.9:20160", "state_name": "Disconnected"}},
    ]},
}


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []
    yield started
    for s in started:
        s.shutdown()
        s.server_close()


def make_cluster(pd_ports: list[int], tidb_ports: list[int]) -> Cluster:
    nodes = [Node(f"pd-{i}", "pd", f"c{i}", MappingProxyType({2379: p})) for i, p in enumerate(pd_ports)]
    nodes += [Node(f"tidb-{i}", "tidb", f"d{i}", MappingProxyType({4000: closed_port(), 10080: p}),
                   ip=f"172.20.0.{20 + i}") for i, p in enumerate(tidb_ports)]
    nodes.append(Node("tikv-0", "tikv", "e0", MappingProxyType({}), ip="172.20.0.9"))
    return Cluster("c", nodes)


def test_pd_roles_come_from_the_first_pd_that_answers(servers: list[ThreadingHTTPServer]) -> None:
    pd = serve(PD_ANSWERS)
    servers.append(pd)
    cluster = make_cluster([closed_port(), pd.server_address[1]], [])
    assert roles.pd_leader(cluster) == "pd-1"
    assert roles.pd_members(cluster) == ["pd-0", "pd-1", "pd-2"]
    assert roles.pd_followers(cluster) == ["pd-0", "pd-2"]
    assert roles.tikv_stores(cluster) == [
        {"id": 4, "address": "172.20.0.9:20160", "state_name": "Disconnected", "node": "tikv-0"},
        {"id": 5, "address": "tikv-1:20160", "state_name": "Up", "node": None},
    ]


def test_no_pd_answers_means_unknown_not_an_exception() -> None:
    cluster = make_cluster([closed_port()], [])
    assert roles.pd_leader(cluster) is None
    assert roles.pd_members(cluster) == []
    assert roles.pd_followers(cluster) == []
    assert roles.tikv_stores(cluster) == []


def test_a_hanging_pd_costs_one_timeout_then_the_next_answers(servers: list[ThreadingHTTPServer]) -> None:
    slow, fast = serve(PD_ANSWERS, delay=5), serve(PD_ANSWERS)
    servers.extend([slow, fast])
    cluster = make_cluster([slow.server_address[1], fast.server_address[1]], [])
    began = time.monotonic()
    assert roles.pd_leader(cluster, timeout=0.5) == "pd-1"
    assert time.monotonic() - began < 3


def test_ddl_owner_from_info_all_of_any_tidb(servers: list[ThreadingHTTPServer]) -> None:
    info = {"/info/all": {"owner_id": "b", "servers_num": 2, "all_servers_info": {
        "a": {"ip": "tidb-0", "listening_port": 4000}, "b": {"ip": "172.20.0.21", "listening_port": 4000}}}}
    tidb1 = serve(info)
    servers.append(tidb1)
    cluster = make_cluster([], [closed_port(), tidb1.server_address[1]])
    assert roles.ddl_owner(cluster) == "tidb-1"  # owner's ip mapped to the node


def test_ddl_owner_unknown_when_nothing_answers() -> None:
    cluster = make_cluster([], [closed_port()])
    began = time.monotonic()
    assert roles.ddl_owner(cluster, timeout=1) is None
    assert time.monotonic() - began < 5
    snap = roles.roles_snapshot(cluster, timeout=1)
    assert snap == {"pd_leader": None, "pd_followers": [], "ddl_owner": None, "tikv_stores": []}
