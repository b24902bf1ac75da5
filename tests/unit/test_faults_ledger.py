"""Ledger tags and the pure script/plan builders of the network faults."""

from __future__ import annotations

import os

import pytest

from pytest_tidb_ha.faults import ledger
from pytest_tidb_ha.faults.iodelay import Throttle, cgroup_dir, iops_for, mount_device
from pytest_tidb_ha.faults.ledger import LEDGER_CHAIN, Tag, parse_rules, parse_tag, tag_is_dead
from pytest_tidb_ha.faults.network import (
    iface_for_ip,
    netem_apply_script,
    netem_args,
    partition_rules,
    plan_sides,
)
from pytest_tidb_ha.scenario.model import Duration

TAG = Tag("abc123", 4242, "0a1b2c", "3-f0.1")


def test_tag_round_trip() -> None:
    assert str(TAG) == "tidb-ha:abc123:4242.0a1b2c:3-f0.1"
    assert parse_tag(str(TAG)) == TAG
    assert parse_tag('"' + str(TAG) + '"') == TAG
    assert parse_tag("tidb-ha:x") is None
    assert parse_tag("someone else's rule") is None


def test_mine_sanitises() -> None:
    t = Tag.mine("run id/with:odd", "f0.0")
    assert t.pid == os.getpid()
    assert parse_tag(str(t)) == t


IPTABLES_S = f"""-P INPUT ACCEPT
-P OUTPUT ACCEPT
-N {LEDGER_CHAIN}
-A INPUT -s 172.18.0.3/32 -m comment --comment {TAG} -j DROP
-A INPUT -s 172.18.0.9/32 -m comment --comment "not ours" -j DROP
-A OUTPUT -d 172.18.0.3/32 -m comment --comment {TAG} -j DROP
-A {LEDGER_CHAIN} -m comment --comment "{TAG} dev=eth0 kind=network_delay qdisc=7e57" -j RETURN
-A OUTPUT -d 10.0.0.1/32 -j ACCEPT
"""


def test_parse_rules_finds_exactly_ours() -> None:
    rules = parse_rules(IPTABLES_S)
    assert [(r.chain, r.tag) for r in rules] == [("INPUT", TAG), ("OUTPUT", TAG), (LEDGER_CHAIN, TAG)]
    assert rules[0].delete_argv() == ["iptables", "-w", "5", "-D", "INPUT", "-s", "172.18.0.3/32",
                                      "-m", "comment", "--comment", str(TAG), "-j", "DROP"]
    assert rules[2].attrs == {"dev": "eth0", "kind": "network_delay", "qdisc": "7e57"}


def test_marker_comment_is_parsed_back() -> None:
    comment = ledger.marker_comment(TAG, {"kind": "io_delay", "device": "254.0"})
    line = f'-A {LEDGER_CHAIN} -m comment --comment "{comment}" -j RETURN'
    (rule,) = parse_rules(line)
    assert rule.tag == TAG
    assert rule.attrs["device"] == "254.0"


def test_dead_tags() -> None:
    mine = ledger.host_id()
    assert not tag_is_dead(Tag("r", os.getpid(), mine, "f"))
    assert tag_is_dead(Tag("r", 2**22 + 12345, mine, "f"))  # beyond pid_max: never alive
    assert not tag_is_dead(Tag("r", 2**22 + 12345, "ffffff" if mine != "ffffff" else "000000", "f"))


IPS = {"pd-0": "10.0.0.2", "tikv-0": "10.0.0.3", "tikv-1": "10.0.0.4", "tidb-0": "10.0.0.5"}


def test_plan_both_directions_cuts_on_both_sides() -> None:
    sides = {s.node: s for s in plan_sides(["tikv-0"], ["pd-0", "tidb-0"], IPS, "both")}
    assert set(sides) == {"tikv-0", "pd-0", "tidb-0"}
    assert sides["tikv-0"].egress == ("10.0.0.2", "10.0.0.5") == sides["tikv-0"].ingress
    assert sides["pd-0"].egress == ("10.0.0.3",) == sides["pd-0"].ingress
    assert "tikv-1" not in sides


def test_plan_to_and_from() -> None:
    to = {s.node: s for s in plan_sides(["tikv-0"], ["pd-0"], IPS, "to")}
    assert to["tikv-0"].egress == ("10.0.0.2",)
    assert to["tikv-0"].ingress == ()
    assert to["pd-0"].ingress == ("10.0.0.3",)
    assert to["pd-0"].egress == ()
    frm = {s.node: s for s in plan_sides(["tikv-0"], ["pd-0"], IPS, "from")}
    assert frm["tikv-0"].ingress == ("10.0.0.2",)
    assert frm["tikv-0"].egress == ()
    assert frm["pd-0"].egress == ("10.0.0.3",)
    with pytest.raises(ValueError, match="direction"):
        plan_sides(["tikv-0"], ["pd-0"], IPS, "sideways")


def test_single_side_isolates_from_everyone() -> None:
    sides = {s.node: s for s in plan_sides([], ["tikv-1"], IPS)}
    assert set(sides["tikv-1"].egress) == {"10.0.0.2", "10.0.0.3", "10.0.0.5"}
    assert sides["pd-0"].egress == ("10.0.0.4",)


def test_partition_rules_carry_the_tag() -> None:
    (side,) = [s for s in plan_sides(["tikv-0"], ["pd-0"], IPS, "both") if s.node == "tikv-0"]
    rules = partition_rules(side, TAG)
    assert ("OUTPUT", ["-d", "10.0.0.2/32", "-m", "comment", "--comment", str(TAG), "-j", "DROP"]) in rules
    assert ("INPUT", ["-s", "10.0.0.2/32", "-m", "comment", "--comment", str(TAG), "-j", "DROP"]) in rules


def test_netem_args() -> None:
    assert netem_args("network_delay", {"latency": Duration(0.1, "100ms")}) == ["delay", "100ms"]
    assert netem_args("network_delay", {"latency": Duration(1), "jitter": Duration(0.01)}) == [
        "delay", "1000ms", "10ms"]
    assert netem_args("network_delay", {"latency": "250ms"}) == ["delay", "250ms"]
    assert netem_args("network_loss", {"loss": 30.0}) == ["loss", "30%"]
    assert netem_args("network_loss", {"loss": "12.5%"}) == ["loss", "12.5%"]


def test_netem_script_filters_only_peers() -> None:
    script = netem_apply_script("eth0", ["10.0.0.2"], ["delay", "100ms"], TAG, "network_delay")
    assert "prio bands 4" in script
    assert "match ip dst 10.0.0.2/32 flowid 7e57:4" in script
    assert "10.0.0.5" not in script
    whole = netem_apply_script("eth0", [], ["loss", "30%"], TAG, "network_loss")
    assert "root handle 7e57: netem loss 30%" in whole
    assert "filter" not in whole


def test_iface_for_ip() -> None:
    out = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
           "42: eth0    inet 172.18.0.3/16 brd 172.18.255.255 scope global eth0\\ valid_lft forever\n")
    assert iface_for_ip(out, "172.18.0.3") == "eth0"
    assert iface_for_ip(out, "172.18.0.4") is None


def test_io_throttle_plan() -> None:
    assert iops_for(0.1) == 10
    assert iops_for(0.3) == 3
    assert iops_for(5) == 1
    v1 = "12:blkio:/docker/abc\n11:memory:/docker/abc\n0::/system.slice/x\n"
    version, path = cgroup_dir(v1)
    assert version == 1
    assert str(path) == "/sys/fs/cgroup/blkio/docker/abc"
    version, path = cgroup_dir("0::/system.slice/docker-abc.scope\n")
    assert version == 2
    assert str(path) == "/sys/fs/cgroup/system.slice/docker-abc.scope"
    mountinfo = ("100 90 0:52 / / rw - overlay overlay rw\n"
                 "101 100 254:0 /var/lib/docker/volumes/v/_data /data rw - ext4 /dev/vda rw\n")
    assert mount_device(mountinfo, "/data/tikv") == ("254:0", "ext4")
    assert mount_device(mountinfo, "/etc") == ("0:52", "overlay")
    t = Throttle(path, 1, "254:0", 10)
    assert [v for _, v in t.apply_writes()] == ["254:0 10", "254:0 10"]
    assert [v for _, v in t.heal_writes()] == ["254:0 0", "254:0 0"]
    t2 = Throttle(path, 2, "254:0", 3)
    assert [v for _, v in t2.apply_writes()] == ["254:0 riops=3 wiops=3"]


def test_reaper_undo_script_undoes_each_marker_kind() -> None:
    from pytest_tidb_ha.faults.reaper import undo_script

    text = (
        f"-A OUTPUT -d 10.0.0.2/32 -m comment --comment \"{TAG}\" -j NFQUEUE --queue-num 1234 --queue-bypass\n"
        f"-A {LEDGER_CHAIN} -m comment --comment \"{TAG} backend=iptables dev=eth0 dpid=777 "
        f"kind=network_delay queue=1234\" -j RETURN\n"
        f"-A {LEDGER_CHAIN} -m comment --comment \"{TAG} dev=eth0 kind=network_loss qdisc=7e57\" -j RETURN\n"
    )
    script = undo_script(parse_rules(text))
    assert "tc qdisc del dev eth0 root" in script
    assert "kill 777" in script
    assert "' 1234 '" in script
    first_rule = script.index("-D OUTPUT")
    assert first_rule < script.index(f"-D {LEDGER_CHAIN}")  # markers go last
    # every copy of a marker goes (the ledger appends without checking first)
    assert script.count(f"while iptables -w 5 -D {LEDGER_CHAIN}") == 2
    assert script.endswith("true")


def test_ledger_add_is_one_append_and_creates_the_chain_only_on_failure() -> None:
    from pytest_tidb_ha.faults.ledger import ledger_add_script

    script = ledger_add_script(TAG, {"kind": "pause"})
    first = script.split("||")[0]
    assert f"iptables -w 5 -A {LEDGER_CHAIN} " in first
    assert " -C " not in script
    assert f"iptables -w 5 -N {LEDGER_CHAIN}" in script.split("||")[1]


def test_tc_scripts_are_valid_shell() -> None:
    """The scripts run under the node's ``sh`` (dash in Debian images): a syntax error there
    surfaces only as a failed apply, so each is checked with ``sh -n`` here."""
    import shutil
    import subprocess

    from pytest_tidb_ha.faults.network import htb_apply_script

    sh = shutil.which("dash") or shutil.which("sh")
    assert sh is not None
    scripts = [netem_apply_script("eth0", ["10.0.0.2"], ["delay", "100ms"], TAG, "network_delay"),
               netem_apply_script("eth0", [], ["loss", "30%"], TAG, "network_loss"),
               htb_apply_script("eth0", ["10.0.0.2"], 1e6, TAG),
               htb_apply_script("eth0", [], 1e6, TAG)]
    for script in scripts:
        done = subprocess.run([sh, "-n", "-c", script], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, (done.stderr, script)
