"""The time model: verdict windows never shrink below the cluster's recovery timers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from loopback import closed_port

from pytest_tidb_ha.jobs.cluster_timers import read_timers
from pytest_tidb_ha.jobs.session import policy_for
from pytest_tidb_ha.scenario.floors import (
    OWNER_TTL,
    PD_LEADER_LEASE,
    RAFT_ELECTION,
    SCHEMA_LEASE,
    STORE_DISCONNECT,
    Timer,
    fault_warnings,
    job_floor,
    job_windows,
    release_line,
    table_timers,
)
from pytest_tidb_ha.scenario.model import (
    AddIndexJob,
    Case,
    Duration,
    FaultSpec,
    ImportIntoJob,
    Schedule,
)
from pytest_tidb_ha.scenario.selectors import parse_selector

TABLE = table_timers("v8.5.7")


def fault(kind: str, selector: str, duration: float = 180.0) -> FaultSpec:
    return FaultSpec(kind=kind, selector=parse_selector(selector),
                     schedule=Schedule(Duration(60), Duration(duration)))


def test_table_values_and_lines() -> None:
    assert {k: t.seconds for k, t in TABLE.items()} == {
        OWNER_TTL: 60.0, SCHEMA_LEASE: 45.0, STORE_DISCONNECT: 20.0, RAFT_ELECTION: 10.0,
        PD_LEADER_LEASE: 3.0}
    assert release_line("v7.5.1") == "v7.5"
    assert release_line("v9.9.0") == "v8.5"
    assert "no row for v9.9.0" in table_timers("v9.9.0")[OWNER_TTL].origin


@pytest.mark.parametrize(
    ("kind", "spec", "seconds", "named"),
    [
        ("add_index", fault("network_partition", "tikv(random)_to_all"), 90.0,
         "DDL schema sync 2 x schema lease 45s"),
        ("import_into", fault("network_partition", "tikv(random)_to_all"), 20.0,
         "PD store Disconnected after 20s"),
        ("import_into", fault("kill", "tidb(ddl_owner)"), 60.0, "DDL owner etcd session TTL 1m"),
        ("add_index", fault("network_partition", "pdleader_to_pdfollower(all)"), 90.0,
         "DDL schema sync"),
        ("import_into", fault("io_delay", "pdleader"), 60.0, "DDL owner etcd session TTL"),
    ],
)
def test_floor_is_the_longest_timer_the_faults_leave_running(
        kind: str, spec: FaultSpec, seconds: float, named: str) -> None:
    floor = job_floor(kind, [spec], TABLE)
    assert floor is not None
    assert floor.seconds == seconds
    assert named in floor.what
    assert "fault 1" in floor.cause


def test_no_fault_no_floor_and_the_scaled_window_stands() -> None:
    w = job_windows("add_index", [], TABLE, stall=7.0, cancel=5.0, timeout=100.0)
    assert w.stall.seconds == 7.0
    assert w.stall.floor is None
    assert "scaled" in w.stall.describe()


def test_windows_are_raised_to_the_floor_and_say_so() -> None:
    w = job_windows("import_into", [fault("kill", "tidb(ddl_owner)")], TABLE,
                    stall=6.0, cancel=5.0, timeout=180.0)
    assert (w.stall.seconds, w.cancel.seconds, w.timeout.seconds) == (60.0, 60.0, 180.0)
    assert w.stall.set_by_floor
    assert not w.timeout.set_by_floor
    assert w.stall.describe().startswith("1m (floor: DDL owner etcd session TTL 1m")
    assert "scaled 6s" in w.stall.describe()


def test_the_runner_policy_uses_the_floor() -> None:
    """At --ha-time-scale 0.05 an owner kill would give a 6 s stall window: below the 60 s a
    healthy cluster needs to elect a new owner."""
    case = Case(name="c", warmup=Duration(60), faults=(fault("kill", "tidb(ddl_owner)"),),
                jobs=(ImportIntoJob(db="d", table="t", source_uri="/import/x.csv",
                                    timeout=Duration(3600)),))
    p = policy_for(case.jobs[0], case, 0.05)
    assert p.stall_window == 60.0
    assert p.cancel_window == 60.0
    assert p.floor is not None
    assert p.at_floor(3.0) == 60.0


def test_a_cluster_that_reports_short_timers_gets_short_windows() -> None:
    """The stand-in reports its scaled timers where TiDB reports its own: no special case."""
    timers = {**TABLE, SCHEMA_LEASE: Timer(SCHEMA_LEASE, 1.0, "TiDB /info lease"),
              OWNER_TTL: Timer(OWNER_TTL, 2.0, "PD etcd lease of the DDL owner key")}
    case = Case(name="c", warmup=Duration(60),
                faults=(fault("network_partition", "pdleader_to_pdfollower(all)"),),
                jobs=(AddIndexJob(db="d", table="t", index_col_name="c",
                                  timeout=Duration(3600)),))
    p = policy_for(case.jobs[0], case, 0.02, timers)
    assert p.floor is not None
    assert p.floor.seconds == 3.0
    assert p.stall_window == pytest.approx(max(7.2, 3.0))


def test_fault_windows_shorter_than_their_timer_are_warned() -> None:
    warnings = fault_warnings([fault("kill", "tidb(ddl_owner)", 60.0)], TABLE, 0.05)
    assert len(warnings) == 1
    assert "3s window is shorter than DDL owner" in warnings[0]
    assert fault_warnings([fault("kill", "tidb(ddl_owner)", 60.0)], TABLE, 1.0) == []
    assert fault_warnings([fault("restart", "tikv-0", 0.0)], TABLE, 0.01) == []


# -- reading a cluster ----------------------------------------------------------------------
class FakeComponents(BaseHTTPRequestHandler):
    """TiDB /info, TiKV /config, PD /pd/api/v1/config and PD's etcd /v3 on one port."""

    def log_message(self, *a: Any) -> None:
        pass

    def _json(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/info":
            self._json({"ddl_id": "x", "lease": "1.5s"})
        elif self.path == "/config":
            self._json({"raftstore": {"raft-base-tick-interval": "100ms",
                                      "raft-election-timeout-ticks": 10}})
        elif self.path == "/pd/api/v1/config":
            self._json({"lease": 3})
        else:
            self.send_response(404)
            self.end_headers()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v3/kv/range":
            assert body["key"] == "L3RpZGIvZGRsL2ZnL293bmVyLw=="  # /tidb/ddl/fg/owner/
            self._json({"kvs": [{"key": "eA==", "lease": "7587"}]})
        elif self.path == "/v3/lease/timetolive":
            assert body == {"ID": 7587}
            self._json({"ID": "7587", "TTL": "1", "grantedTTL": "2"})
        else:
            self.send_response(404)
            self.end_headers()


class Cluster:
    def __init__(self, url: str) -> None:
        self.url = url

    def pd_urls(self) -> list[str]:
        return [self.url]

    def status_urls(self, component: str) -> dict[str, str]:
        return {f"{component}-0": self.url}


@pytest.fixture
def components() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeComponents)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_timers_are_read_where_the_cluster_reports_them(components: str) -> None:
    timers, notes = read_timers(Cluster(components), "v8.5.7")
    assert notes == []
    assert timers[SCHEMA_LEASE] == Timer(SCHEMA_LEASE, 1.5, "TiDB /info lease")
    assert timers[OWNER_TTL] == Timer(OWNER_TTL, 2.0, "PD etcd lease of the DDL owner key")
    assert timers[RAFT_ELECTION].seconds == pytest.approx(1.0)
    assert timers[PD_LEADER_LEASE].origin == "PD /pd/api/v1/config lease"
    assert timers[STORE_DISCONNECT].origin == "table v8.5"  # PD reports it nowhere


def test_a_silent_cluster_keeps_the_table_and_says_why() -> None:
    timers, notes = read_timers(Cluster(f"http://127.0.0.1:{closed_port()}"), "v7.5.0",
                                timeout=0.5)
    assert {t.origin for t in timers.values()} == {"table v7.5"}
    assert len(notes) == 4
    assert all("per-version table" in n for n in notes)


def test_a_dead_node_does_not_hide_the_timers_of_those_that_answer(components: str) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"

    class Partial(Cluster):
        def pd_urls(self) -> list[str]:
            return [dead, self.url]

        def status_urls(self, component: str) -> dict[str, str]:
            return {f"{component}-0": dead, f"{component}-1": self.url}

    timers, notes = read_timers(Partial(components), "v8.5.7", timeout=0.5)
    assert notes == []
    assert timers[SCHEMA_LEASE].origin == "TiDB /info lease"
    assert timers[OWNER_TTL].seconds == 2.0
