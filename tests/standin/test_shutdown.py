"""Every stand-in role exits on SIGTERM as the real servers do (``docker stop`` / restart).

A process that ignores SIGTERM is SIGKILLed when ``docker stop``'s grace period ends: exit
code 137. Each role must instead exit 0 on its own, logging the real servers' words, and a
TiDB must leave the cluster on the way out (tidb-server revokes its etcd session when it
closes, so its registry entry and DDL ownership go at once, not a session TTL later).
"""

from __future__ import annotations

import pytest
from standin_helpers import StandinNet
from test_tidb_support import owner, start_cluster

pytestmark = pytest.mark.docker

#: Far longer than any role needs: an exit within it is the role's own, not docker's SIGKILL.
GRACE = 60


def stop(net: StandinNet, name: str) -> tuple[int, str]:
    """``docker stop`` with a long grace period; (exit code, logs)."""
    container = net.container(name)
    container.stop(timeout=GRACE)
    code = int(container.wait(timeout=GRACE + 10)["StatusCode"])
    return code, container.logs().decode(errors="replace")


def test_every_role_exits_zero_on_sigterm(standin: StandinNet) -> None:
    tidbs = start_cluster(standin, tidbs=2)
    owner_name = owner(standin, tidbs)
    assert owner_name is not None, standin.story()
    other = next(n for n in tidbs if n != owner_name)
    _status, before = standin.http(other, 10080, "/info/all")
    owner_id = before["owner_id"]
    assert owner_id in before["all_servers_info"]

    code, logs = stop(standin, owner_name)
    assert code == 0, f"tidb exit code {code}\n{logs[-2000:]}"
    assert '"got signal to exit"' in logs and "[signal=SIGTERM]" in logs, logs[-2000:]
    # Its session was revoked on the way out: gone from the registry the moment it exited.
    _status, after = standin.http(other, 10080, "/info/all")
    assert owner_id not in after["all_servers_info"], after

    for name, words in (("tikv-0", "receive signal, exiting"), ("pd-0", "got signal to exit")):
        code, logs = stop(standin, name)
        assert code == 0, f"{name} exit code {code}\n{logs[-2000:]}"
        assert words in logs, logs[-2000:]
