"""PD role of the stand-in: real etcd raft behind PD's HTTP API (Docker).

Each test starts its own PDs on a private network.  Faults are physical: iptables DROP
rules inside the leader's network namespace, `docker pause`, killing the etcd child.
"""

from __future__ import annotations

import time

import pytest
from common.etcd import Compare, Etcd, EtcdUnavailable, LeaseNotFound, Op
from standin_helpers import StandinNet, pd_leader, wait_for

pytestmark = pytest.mark.docker

ENV = {"STANDIN_TIME_SCALE": "0.05"}
START_TIMEOUT = 60.0


def start_pds(net: StandinNet, n: int) -> list[str]:
    names = net.pd_cluster(n, env=ENV)

    def all_healthy() -> bool:
        for name in names:
            status, body = net.pd_get(name, "/health", timeout=3)
            if status != 200 or not all(m["health"] for m in body) or len(body) != n:
                return False
        return True

    wait_for(f"{n} healthy PDs", all_healthy, timeout=START_TIMEOUT, story=net.story)
    return names


def agreed_leader(net: StandinNet, names: list[str]) -> str | None:
    """The leader every PD in ``names`` reports, or None while they disagree."""
    leaders = {pd_leader(net, name, timeout=3) for name in names}
    return leaders.pop() if len(leaders) == 1 and None not in leaders else None


def test_three_pds_elect_one_leader_with_pd_json_shapes(standin: StandinNet) -> None:
    names = start_pds(standin, 3)
    leader = wait_for("one agreed leader", lambda: agreed_leader(standin, names), timeout=30,
                      story=standin.story)

    status, members = standin.pd_get("pd-1", "/members")
    assert status == 200
    assert members["header"]["cluster_id"] > 0
    assert sorted(m["name"] for m in members["members"]) == names
    for member in members["members"]:
        name = member["name"]
        assert member["peer_urls"] == [f"http://{name}:2380"]
        assert member["client_urls"] == [f"http://{name}:2379"]
        assert isinstance(member["member_id"], int)
        assert member["member_id"] > 0
    assert members["leader"]["name"] == leader
    assert members["etcd_leader"] == members["leader"]

    status, health = standin.pd_get("pd-2", "/health")
    assert status == 200
    assert {h["name"]: h["health"] for h in health} == dict.fromkeys(names, True)
    assert set(health[0]) == {"name", "member_id", "client_urls", "health"}

    assert standin.pd_get("pd-0", "/version") == (200, {"version": "v8.5.7"})
    status, info = standin.pd_get("pd-0", "/status")
    assert status == 200
    assert {"build_ts", "version", "git_hash", "start_timestamp"} <= set(info)
    assert standin.pd_get("pd-0", "/stores") == (200, {"count": 0, "stores": []})
    status, cluster = standin.pd_get("pd-0", "/cluster/status")
    assert status == 200
    assert cluster["is_initialized"] is False
    assert standin.http("pd-0", 2379, "/pd/api/v1/ping")[0] == 200
    assert standin.http("pd-0", 2379, "/pd/api/v1/nope")[0] == 404


def test_partitioned_leader_loses_leadership_and_rejoins(standin: StandinNet) -> None:
    names = start_pds(standin, 3)
    old = wait_for("one agreed leader", lambda: agreed_leader(standin, names), timeout=30,
                   story=standin.story)
    followers = [n for n in names if n != old]
    standin.isolate(old, followers)

    def new_leader() -> str | None:
        leader = agreed_leader(standin, followers)
        return leader if leader and leader != old else None

    elected = wait_for("a new leader on the majority side", new_leader, timeout=30, story=standin.story)
    assert elected in followers

    # CheckQuorum: the isolated old leader steps down and answers quickly, without a leader.
    def old_has_no_leader() -> bool:
        return pd_leader(standin, old, timeout=5) is None

    wait_for(f"{old} to step down", old_has_no_leader, timeout=30, story=lambda: standin.story(old))
    started = time.monotonic()
    status, _ = standin.pd_get(old, "/stores", timeout=10)
    assert status == 503
    assert time.monotonic() - started < 5.0, "a PD without quorum must answer, not hang"
    status, members = standin.pd_get(old, "/members", timeout=5)
    assert status == 200
    assert "leader" not in members

    standin.heal(old)
    wait_for("all three agree on the leader again", lambda: agreed_leader(standin, names),
             timeout=30, story=standin.story)
    status, health = standin.pd_get(old, "/health")
    assert status == 200
    assert all(h["health"] for h in health)


def test_leader_transfer_and_resign(standin: StandinNet) -> None:
    names = start_pds(standin, 3)
    leader = wait_for("one agreed leader", lambda: agreed_leader(standin, names), timeout=30,
                      story=standin.story)
    target = next(n for n in names if n != leader)
    via = next(n for n in names if n not in (leader, target))  # a follower forwards to the leader

    status, body = standin.http(via, 2379, f"/pd/api/v1/leader/transfer/{target}", method="POST")
    assert status == 200, body
    wait_for(f"leader {target}", lambda: agreed_leader(standin, names) == target, timeout=20,
             story=standin.story)

    status, body = standin.http(target, 2379, "/pd/api/v1/leader/resign", method="POST")
    assert status == 200, body
    wait_for("a leader other than the resigned one",
             lambda: (agreed_leader(standin, names) or target) != target, timeout=20, story=standin.story)

    status, body = standin.http(via, 2379, "/pd/api/v1/leader/transfer/pd-9", method="POST")
    assert (status, body) == (500, "no valid pd to transfer leader")


def test_etcd_gateway_through_pd_fails_over_a_paused_pd(standin: StandinNet) -> None:
    names = start_pds(standin, 3)
    wait_for("one agreed leader", lambda: agreed_leader(standin, names), timeout=30, story=standin.story)
    etcd = Etcd([f"{standin.ip(n)}:2379" for n in names], timeout=2.0)

    etcd.put("/t/a", "1")
    assert etcd.get("/t/a").text == "1"  # type: ignore[union-attr]
    assert etcd.create("/t/b", "2") is True
    assert etcd.create("/t/b", "3") is False
    result = etcd.txn([Compare.value("/t/a", "=", "1")], [Op.put("/t/a", "10"), Op.get("/t/", prefix=True)])
    assert result.succeeded
    assert [(kv.key_text, kv.text) for kv in result.responses[1]] == [("/t/a", "10"), ("/t/b", "2")]
    lease = etcd.grant(5)
    etcd.put("/t/leased", "x", lease=lease)
    assert etcd.keepalive(lease) == 5
    assert lease in etcd.leases()

    # First endpoint frozen: calls still succeed by failing over to the next PD.
    standin.pause(names[0])
    try:
        started = time.monotonic()
        etcd.put("/t/c", "during-pause")
        assert etcd.get("/t/c").text == "during-pause"  # type: ignore[union-attr]
        assert time.monotonic() - started < 10
    finally:
        standin.unpause(names[0])

    etcd.revoke(lease)
    assert etcd.get("/t/leased") is None
    with pytest.raises(LeaseNotFound):
        etcd.keepalive(lease)
    assert etcd.delete("/t/", prefix=True) == 3


def test_pd_without_quorum_answers_503_instead_of_hanging(standin: StandinNet) -> None:
    names = start_pds(standin, 3)
    wait_for("one agreed leader", lambda: agreed_leader(standin, names), timeout=30, story=standin.story)
    survivor = names[0]
    for name in names[1:]:
        standin.pause(name)
    try:
        # The old leader may answer from memory until CheckQuorum deposes it (like PD's
        # leader lease); then 503 — and every answer comes quickly, none hangs.
        slowest = 0.0

        def answers_503() -> bool:
            nonlocal slowest
            started = time.monotonic()
            status, _ = standin.pd_get(survivor, "/stores", timeout=15)
            slowest = max(slowest, time.monotonic() - started)
            return status == 503

        wait_for("503 from the PD without quorum", answers_503, timeout=15, story=standin.story)
        assert slowest < 6
        etcd = Etcd([f"{standin.ip(survivor)}:2379"], timeout=8.0)
        started = time.monotonic()
        with pytest.raises(EtcdUnavailable):
            etcd.put("/t/x", "1")
        assert time.monotonic() - started < 9
    finally:
        for name in names[1:]:
            standin.unpause(name)
    wait_for("quorum back", lambda: standin.pd_get(survivor, "/stores", timeout=5)[0] == 200,
             timeout=30, story=standin.story)


def test_pd_survives_an_etcd_crash_and_keeps_its_data(standin: StandinNet) -> None:
    names = start_pds(standin, 1)
    etcd = Etcd([f"{standin.ip(names[0])}:2379"], timeout=3.0)
    etcd.put("/t/persist", "yes")
    code, out = standin.container(names[0]).exec_run(["pkill", "-9", "-x", "etcd"])
    assert code == 0, out
    wait_for("etcd restarted by the PD role",
             lambda: "etcd exited, restarting" in standin.logs(names[0], 200), timeout=15,
             story=standin.story)
    value = wait_for("the key after the restart",
                     lambda: (etcd.get("/t/persist") or None), timeout=30, story=standin.story)
    assert value.text == "yes"
    wait_for("PD healthy again", lambda: standin.pd_get(names[0], "/health")[0] == 200, timeout=10,
             story=standin.story)


def test_join_adds_a_member_and_delete_removes_it(standin: StandinNet) -> None:
    """tiup playground adds PDs with --join (client URLs of the running cluster)."""
    names = start_pds(standin, 1)
    standin.run("pd-1", "pd", [
        "--name=pd-1", "--data-dir=/data/pd", "--client-urls=http://0.0.0.0:2379",
        "--advertise-client-urls=http://pd-1:2379", "--peer-urls=http://0.0.0.0:2380",
        "--advertise-peer-urls=http://pd-1:2380", f"--join=http://{names[0]}:2379",
    ], env=ENV)

    def two_healthy() -> bool:
        status, body = standin.pd_get("pd-1", "/health", timeout=3)
        return status == 200 and sorted(h["name"] for h in body if h["health"]) == ["pd-0", "pd-1"]

    wait_for("pd-1 joined and healthy", two_healthy, timeout=60, story=standin.story)
    assert agreed_leader(standin, ["pd-0", "pd-1"]) is not None

    # etcd refuses to remove a member it has heard from for less than 5 s ("unhealthy
    # cluster"), exactly as under real PD: retry until it accepts.
    answer = wait_for(
        "pd-1 removed",
        lambda: _delete_ok(standin, "pd-0", "pd-1"),
        timeout=30, story=standin.story,
    )
    assert answer == (200, "removed, pd: pd-1")
    status, members = standin.pd_get("pd-0", "/members")
    assert [m["name"] for m in members["members"]] == ["pd-0"]
    status, body = standin.http("pd-0", 2379, "/pd/api/v1/members/name/pd-7", method="DELETE")
    assert (status, body) == (404, "not found, pd: pd-7")


def _delete_ok(net: StandinNet, via: str, name: str) -> tuple[int, object] | None:
    answer = net.http(via, 2379, f"/pd/api/v1/members/name/{name}", method="DELETE", timeout=10)
    if answer[0] == 503 and "unhealthy cluster" in str(answer[1]):
        return None
    return answer
