"""Every stand-in role exits on SIGTERM as the real servers do (``docker stop`` / restart).

A process that ignores SIGTERM is SIGKILLed when ``docker stop``'s grace period ends: exit
code 137. Each role must instead exit 0 on its own, logging the real servers' words, and a
TiDB must leave the cluster on the way out (tidb-server revokes its etcd session when it
closes, so its registry entry and DDL ownership go at once, not a session TTL later).
"""

from __future__ import annotations

import pytest
from standin_helpers import StandinNet, wait_for
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
    owner_name = wait_for("a DDL owner", lambda: owner(standin, tidbs), timeout=30,
                          story=standin.story)
    other = next(n for n in tidbs if n != owner_name)
    owner_id = standin.http(owner_name, 10080, "/info")[1]["ddl_id"]
    wait_for(f"{other} to know the owner", lambda: (
        standin.http(other, 10080, "/info/all")[1]["owner_id"] == owner_id), timeout=30)

    code, logs = stop(standin, owner_name)
    assert code == 0, f"tidb exit code {code}\n{logs[-2000:]}"
    assert '"got signal to exit"' in logs, logs[-2000:]
    assert "[signal=SIGTERM]" in logs, logs[-2000:]
    # Its session was revoked on the way out: gone from the registry the moment it exited.
    _status, after = standin.http(other, 10080, "/info/all")
    assert owner_id not in after["all_servers_info"], after

    for name, words in (("tikv-0", "receive signal, exiting"), ("pd-0", "got signal to exit")):
        code, logs = stop(standin, name)
        assert code == 0, f"{name} exit code {code}\n{logs[-2000:]}"
        assert words in logs, logs[-2000:]
