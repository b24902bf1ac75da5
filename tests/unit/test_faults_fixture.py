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
@pytest.mark.fault("pause", selector="tidb-0", duration="1s", allow_fault_errors=True)
def test_resign_runs_and_the_allowed_rest_is_noted(nemesis, ha_record, resigns):
    assert nemesis.wait(10)
    assert resigns == ["/pd/api/v1/leader/resign"]
    inject = ha_record.timeline.events("fault.inject")[0].data
    assert inject["roles"] == {"pd_leader": "pd-0"}
    healed = ha_record.timeline.events("fault.healed")[0].data
    assert healed["roles_after"] == {"pd_leader": "pd-1"}
    assert [e.data["fault_kind"] if "fault_kind" in e.data else e.data["kind"]
            for e in ha_record.timeline.events("nemesis.skip")] == ["pause"]


@pytest.mark.fault("pd_leader_resign", warmup="0s")
@pytest.mark.fault("pause", selector="tidb-0", duration="1s")
def test_a_fault_that_cannot_be_applied_fails_the_test(nemesis):
    assert nemesis.wait(10)

'''


def test_nemesis_fixture_in_attach_mode(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_attach=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", timeout=120)
    # the second test passes its body, then its teardown fails: the pause never applied
    result.assert_outcomes(passed=2, skipped=1, errors=1)
    result.stdout.fnmatch_lines(["*note: fault error allowed by the test: fault f0.0 pause "
                                 "window 1 on tidb-0*attached*"])
    result.stdout.fnmatch_lines(["*SKIPPED*kill needs control of the node containers*attached*"])
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_a_fault_that_cannot_be_applied_fails_the_test*",
        "*faults not applied as planned*",
        "*fault f0.0 pause window 1 on tidb-0*was not applied:*attached*"])


def test_declared_faults_run_without_asking_for_the_fixture(pytester: pytest.Pytester) -> None:
    """A test with fault markers that uses the cluster but forgot ``nemesis`` must not
    pass without its faults: the plugin adds the fixture."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_forgot='''
import pytest

@pytest.mark.fault("pause", selector="tidb-0", duration="1s")
def test_forgot_the_nemesis(tidb_cluster):
    pass

@pytest.mark.fault("pd_leader_resign", warmup="0s")
def test_resign_without_the_fixture(tidb_cluster, resigns):
    pass

def test_resign_happened(resigns):
    assert resigns == ["/pd/api/v1/leader/resign"]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", timeout=120)
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*pause needs control of the node containers*"])
