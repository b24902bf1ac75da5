"""TiKV role of the stand-in: KV RPC on sqlite, status server, PD heartbeats (Docker).

Store states come from heartbeat age in PD, so pausing/killing a TiKV container must move
its store Up -> Disconnected -> Down and back to Up, with the thresholds scaled by
STANDIN_TIME_SCALE (0.005 here: Disconnected after 3 s, Down after 9 s).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from common import httpclient
from standin_helpers import StandinNet, wait_for

pytestmark = pytest.mark.docker

ENV = {"STANDIN_TIME_SCALE": "0.005"}


def rpc(net: StandinNet, node: str, op: str, body: dict[str, Any], timeout: float = 5.0) -> tuple[int, Any]:
    return net.http(node, 20160, f"/kv/{op}", method="POST", body=body, timeout=timeout)


def stores(net: StandinNet, pd: str = "pd-0") -> dict[str, dict[str, Any]]:
    status, body = net.pd_get(pd, "/stores", timeout=5)
    assert status == 200, body
    assert body["count"] == len(body["stores"])
    return {s["store"]["address"]: s for s in body["stores"]}


def state_of(net: StandinNet, address: str) -> str | None:
    info = stores(net).get(address)
    return info["store"]["state_name"] if info else None


def start_pd_and_tikv(net: StandinNet, tikvs: int = 1) -> list[str]:
    net.pd(env=ENV)
    wait_for("PD healthy", lambda: net.pd_get("pd-0", "/health", timeout=3)[0] == 200,
             timeout=60, story=net.story)
    names = [f"tikv-{i}" for i in range(tikvs)]
    for name in names:
        net.tikv(name, env=ENV)
    for name in names:
        def up(n: str = name) -> bool:
            return state_of(net, f"{n}:20160") == "Up"

        wait_for(f"{name} Up in PD", up, timeout=60, story=net.story)
    return names


def test_kv_rpc_and_status_server(standin: StandinNet) -> None:
    start_pd_and_tikv(standin)
    kvs = [["t_1_r_2", {"c": "two"}], ["t_1_r_1", [1, "one"]], ["t_1_r_3", "three"], ["t_2_r_1", 5]]
    assert rpc(standin, "tikv-0", "batch_put", {"kvs": kvs}) == (200, {"count": 4})
    assert rpc(standin, "tikv-0", "batch_get", {"keys": ["t_1_r_3", "missing", "t_1_r_1"]}) == (
        200, {"kvs": [["t_1_r_3", "three"], ["t_1_r_1", [1, "one"]]]})
    assert rpc(standin, "tikv-0", "scan", {"start": "t_1_", "end": "t_1_r_3"}) == (
        200, {"kvs": [["t_1_r_1", [1, "one"]], ["t_1_r_2", {"c": "two"}]]})
    assert rpc(standin, "tikv-0", "scan", {"start": "t_", "limit": 1, "reverse": True}) == (
        200, {"kvs": [["t_2_r_1", 5]]})
    assert rpc(standin, "tikv-0", "batch_delete", {"keys": ["t_1_r_2", "nope"]}) == (200, {"deleted": 1})
    assert rpc(standin, "tikv-0", "delete_range", {"start": "t_2_", "end": "t_3_"}) == (200, {"deleted": 1})
    assert rpc(standin, "tikv-0", "scan", {"start": ""})[1]["kvs"] == [["t_1_r_1", [1, "one"]], ["t_1_r_3", "three"]]
    status, body = rpc(standin, "tikv-0", "batch_put", {"kvs": "not-a-list"})
    assert status == 400
    assert "error" in body
    status, body = rpc(standin, "tikv-0", "batch_get", {"keys": [1]})
    assert status == 400
    assert "error" in body

    assert standin.http("tikv-0", 20180, "/status") == (200, None)  # 200, empty body
    status, metrics = standin.http("tikv-0", 20180, "/metrics")
    assert status == 200
    assert 'tikv_engine_num_keys{db="kv",cf="default"} 2' in metrics
    assert 'tikv_grpc_msg_total{type="batch_put"} 2' in metrics

    info = stores(standin)["tikv-0:20160"]
    assert info["store"]["id"] == 1
    assert info["store"]["status_address"] == "tikv-0:20180"
    assert info["store"]["version"] == "8.5.7"
    assert {"capacity", "available", "last_heartbeat_ts", "start_ts"} <= set(info["status"])


def test_acknowledged_writes_survive_sigkill(standin: StandinNet) -> None:
    start_pd_and_tikv(standin)
    kvs = [[f"k{i:05d}", i] for i in range(500)]
    assert rpc(standin, "tikv-0", "batch_put", {"kvs": kvs})[0] == 200
    container = standin.container("tikv-0")
    container.kill()  # SIGKILL: no shutdown path runs
    wait_for("tikv-0 exited", lambda: standin.container("tikv-0").status == "exited", timeout=20)
    container.start()
    _status, body = wait_for("tikv-0 answering again",
                            lambda: _try_rpc(standin, "scan", {"start": "k", "end": "l"}), timeout=30,
                            story=standin.story)
    assert body["kvs"] == kvs
    wait_for("store Up again", lambda: state_of(standin, "tikv-0:20160") == "Up", timeout=30,
             story=standin.story)
    assert stores(standin)["tikv-0:20160"]["store"]["id"] == 1  # same store, not a new one


def _try_rpc(net: StandinNet, op: str, body: dict[str, Any]) -> tuple[int, Any] | None:
    try:
        answer = rpc(net, "tikv-0", op, body, timeout=2)
    except httpclient.Unreachable:
        return None
    return answer if answer[0] == 200 else None


def test_store_state_follows_heartbeats_when_paused_and_killed(standin: StandinNet) -> None:
    start_pd_and_tikv(standin, tikvs=2)
    addr = "tikv-0:20160"
    container = standin.container("tikv-0")

    standin.pause("tikv-0")
    try:
        seen = [wait_for("Disconnected", lambda: state_of(standin, addr) == "Disconnected" and "Disconnected",
                         timeout=10, interval=0.1, story=standin.story)]
        # A paused store does not answer: the client's timeout is the only way out.
        started = time.monotonic()
        with pytest.raises(httpclient.Unreachable):
            rpc(standin, "tikv-0", "batch_get", {"keys": ["a"]}, timeout=1.0)
        assert time.monotonic() - started < 3
        seen.append(wait_for("Down", lambda: state_of(standin, addr) == "Down" and "Down",
                             timeout=30, story=standin.story))
        assert state_of(standin, "tikv-1:20160") == "Up"  # the other store keeps heartbeating
    finally:
        standin.unpause("tikv-0")
    seen.append(wait_for("Up after unpause", lambda: state_of(standin, addr) == "Up" and "Up",
                         timeout=10, story=standin.story))
    assert seen == ["Disconnected", "Down", "Up"]

    container.kill()
    wait_for("Disconnected after kill", lambda: state_of(standin, addr) == "Disconnected",
             timeout=10, interval=0.1, story=standin.story)
    container.start()
    wait_for("Up after restart", lambda: state_of(standin, addr) == "Up", timeout=30, story=standin.story)


def test_heartbeats_fail_over_across_pd_endpoints(standin: StandinNet) -> None:
    names = standin.pd_cluster(3, env=ENV)
    wait_for("3 healthy PDs", lambda: standin.pd_get("pd-1", "/health", timeout=3)[0] == 200 and all(
        h["health"] for h in standin.pd_get("pd-1", "/health", timeout=3)[1]), timeout=60, story=standin.story)
    standin.tikv("tikv-0", pds=names, env=ENV)

    def state_via(pd: str) -> str | None:
        status, body = standin.pd_get(pd, "/stores", timeout=5)
        return body["stores"][0]["store"]["state_name"] if status == 200 and body["stores"] else None

    wait_for("store Up", lambda: state_via("pd-1") == "Up", timeout=60, story=standin.story)
    standin.pause("pd-0")  # the first endpoint of --pd
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            state = state_via("pd-1")
            assert state in ("Up", None), f"store went {state} although 2 of 3 PDs are up"
            time.sleep(0.3)
        assert state_via("pd-2") == "Up"
    finally:
        standin.unpause("pd-0")


def test_stores_stay_up_across_pd_leader_changes(standin: StandinNet) -> None:
    """Store state lives with the PD leader; a new leader must not declare stores lost."""
    names = standin.pd_cluster(3, env=ENV)
    wait_for("3 healthy PDs", lambda: all(
        h["health"] for h in standin.pd_get("pd-0", "/health", timeout=3)[1]), timeout=60, story=standin.story)
    standin.tikv("tikv-0", pds=names, env=ENV)
    wait_for("store Up", lambda: state_of(standin, "tikv-0:20160") == "Up", timeout=60, story=standin.story)
    for _ in range(2):
        leader = wait_for("a leader", lambda: standin.pd_get("pd-0", "/leader", timeout=3)[1].get("name"),
                          timeout=20, story=standin.story)
        target = next(n for n in names if n != leader)
        status, body = standin.http("pd-0", 2379, f"/pd/api/v1/leader/transfer/{target}", method="POST")
        assert status == 200, body
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for pd in names:
                status, body = standin.pd_get(pd, "/stores", timeout=5)
                if status == 200:  # 503 while no leader is known is fine; a lost store is not
                    states = [s["store"]["state_name"] for s in body["stores"]]
                    assert states == ["Up"], f"{pd} says {body}\n{_heartbeats(standin)}\n{standin.story()}"
            time.sleep(0.2)
    assert stores(standin, "pd-2")["tikv-0:20160"]["store"]["id"] == 1


def _heartbeats(net: StandinNet) -> str:
    try:
        metrics = net.http("tikv-0", 20180, "/metrics", timeout=2)[1]
    except httpclient.Unreachable as exc:
        return f"tikv-0 metrics unreachable: {exc}"
    return "\n".join(line for line in str(metrics).splitlines() if "heartbeat" in line)
