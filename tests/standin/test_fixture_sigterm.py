"""The ``standin`` fixture's teardown holds on SIGTERM (CI cancelling the run).

A whole ``pytest tests`` run once left a stand-in cluster of this directory behind after
SIGTERM until the next run's reaper came: the fixture removed its containers in
``finally``, and Python's default SIGTERM ends the process before any ``finally`` runs.
An inner session here runs a test that starts one container and then waits; the outer
test sends SIGTERM and checks that nothing with the inner net's run label is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from standin_helpers import LABEL_PREFIX, wait_for

pytestmark = pytest.mark.docker

HERE = Path(__file__).resolve().parent

CONFTEST = f'''
import importlib.util
import sys

sys.path.insert(0, {str(HERE)!r})
_spec = importlib.util.spec_from_file_location("standin_conftest_under_test", {str(HERE / "conftest.py")!r})
_mod = importlib.util.module_from_spec(_spec)
sys.modules["standin_conftest_under_test"] = _mod
_spec.loader.exec_module(_mod)
pytest_plugins = ["standin_conftest_under_test"]
'''


def labelled(client: Any, run_id: str) -> list[str]:
    flt = {"label": f"{LABEL_PREFIX}.run={run_id}"}
    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=flt)]
            + [f"network {n.name}" for n in client.networks.list(filters=flt)])


def test_sigterm_removes_the_standin_net(pytester: pytest.Pytester, docker_client: Any,
                                         standin_image: str) -> None:
    ready = pytester.path / "ready.txt"
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_victim=f"""
        import time

        def test_waits(standin):
            standin.pd()
            open({str(ready)!r}, "w").write(standin.run_id)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "test_victim.py"], cwd=pytester.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    run_id = ""
    try:
        wait_for("the inner test to start its container", lambda: (
            proc.poll() is not None or (ready.exists() and ready.read_text())), timeout=240)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        run_id = ready.read_text()
        assert labelled(docker_client, run_id), "the inner test started nothing"
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
        assert labelled(docker_client, run_id) == [], output[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for c in (docker_client.containers.list(
                all=True, filters={"label": f"{LABEL_PREFIX}.run={run_id}"}) if run_id else ()):
            c.remove(force=True, v=True)
        for n in (docker_client.networks.list(
                filters={"label": f"{LABEL_PREFIX}.run={run_id}"}) if run_id else ()):
            n.remove()
