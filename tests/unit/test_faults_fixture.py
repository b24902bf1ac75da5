"""The ``nemesis`` fixture on an attached cluster (no Docker): skips and runs what it can."""

from __future__ import annotations

import pytest

CONFTEST = '''
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest
from pytest_tidb_ha.cluster.handle import Cluster, Node

RESIGNS = []

class PD(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def _json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/pd/api/v1/leader":
            self._json({"name": "pd-1" if RESIGNS else "pd-0"})
        elif self.path == "/pd/api/v1/members":
            self._json({"members": [{"name": "pd-0"}, {"name": "pd-1"}]})
        else:
            self.send_error(404)
    def do_POST(self):
        RESIGNS.append(self.path)
        self._json({})

@pytest.fixture(scope="session")
def pd_stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), PD)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()

@pytest.fixture
def tidb_cluster(pd_stub):
    port = pd_stub.server_address[1]
    nodes = [Node("pd-0", "pd", host_ports={2379: port}), Node("pd-1", "pd", host_ports={2379: port}),
             Node("tikv-0", "tikv"), Node("tidb-0", "tidb")]
    return Cluster("attached", nodes)

@pytest.fixture
def resigns():
    return RESIGNS
'''

TESTS = '''
import time
import pytest

@pytest.mark.fault("kill", selector="tikv-0", duration="10s")
def test_kill_is_skipped_when_attached(nemesis):
    raise AssertionError("must not run: kill needs containers")

@pytest.mark.fault("pd_leader_resign", warmup="0s")
@pytest.mark.fault("pause", selector="tidb-0", duration="1s")
def test_resign_runs_and_the_rest_is_noted(nemesis, ha_record, resigns):
    assert nemesis.wait(10)
    assert resigns == ["/pd/api/v1/leader/resign"]
    inject = ha_record.timeline.events("fault.inject")[0].data
    assert inject["roles"] == {"pd_leader": "pd-0"}
    healed = ha_record.timeline.events("fault.healed")[0].data
    assert healed["roles_after"] == {"pd_leader": "pd-1"}
    assert [e.data["fault_kind"] if "fault_kind" in e.data else e.data["kind"]
            for e in ha_record.timeline.events("nemesis.skip")] == ["pause"]
    assert any("pause" in note and "attached" in note for note in ha_record.notes)
'''


def test_nemesis_fixture_in_attach_mode(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_attach=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", timeout=120)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*kill needs control of the node containers*attached*"])
