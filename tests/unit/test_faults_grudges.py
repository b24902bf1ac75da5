"""Partition shapes (Jepsen's grudges) and their two-sided rules: pure."""

from __future__ import annotations

import random
from itertools import permutations

import pytest

from pytest_tidb_ha.faults.grudges import (
    ShapeError,
    bisect,
    bridge,
    grudge_for,
    grudge_sides,
    halves,
    majorities_ring,
    reachable,
)
from pytest_tidb_ha.faults.ledger import Tag
from pytest_tidb_ha.faults.network import partition_apply_script, partition_rules, plan_sides

NODES = ["pd-0", "pd-1", "pd-2", "tikv-0", "tikv-1"]
IPS = {n: f"10.0.0.{i + 2}" for i, n in enumerate(NODES)}


def sees(grudge: dict[str, frozenset[str]], node: str) -> set[str]:
    """Nodes whose packets ``node`` accepts (itself included)."""
    return {x for x in grudge if reachable(grudge, x, node)}


def test_bisect_puts_the_odd_node_first() -> None:
    assert bisect(["1", "2", "3", "4", "5"]) == (["1", "2", "3"], ["4", "5"])


def test_halves_is_a_complete_cut_between_two_groups() -> None:
    g = halves(NODES, random.Random(1))
    groups = {frozenset(sees(g, n)) for n in NODES}
    assert len(groups) == 2
    assert sorted(len(x) for x in groups) == [2, 3]
    for a, b in permutations(NODES, 2):
        same = any(a in grp and b in grp for grp in groups)
        assert reachable(g, a, b) is same


def test_bridge_keeps_one_node_talking_to_both_halves() -> None:
    g = bridge(NODES, random.Random(3))
    (middle,) = [n for n in NODES if g[n] == frozenset()]
    for n in NODES:
        assert reachable(g, n, middle)
        assert reachable(g, middle, n)
    others = [n for n in NODES if n != middle]
    assert any(not reachable(g, a, b) for a, b in permutations(others, 2))


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_majorities_ring_every_node_sees_a_majority_and_no_two_the_same(n: int) -> None:
    nodes = [f"tikv-{i}" for i in range(n)]
    g = majorities_ring(nodes, random.Random(n))
    views = [frozenset(sees(g, x)) for x in nodes]
    assert all(len(v) == n // 2 + 1 for v in views)
    assert len(set(views)) == n  # no two nodes see the same majority


def test_the_same_seed_draws_the_same_groups_whatever_the_input_order() -> None:
    a = grudge_for("halves", NODES, random.Random("42:f0.1"))
    b = grudge_for("halves", list(reversed(NODES)), random.Random("42:f0.1"))
    assert a == b
    draws = {frozenset(frozenset(sees(grudge_for("halves", NODES, random.Random(s)), n))
                       for n in NODES) for s in range(20)}
    assert len(draws) > 1  # different seeds do move the cut


@pytest.mark.parametrize(("shape", "nodes"), [("halves", ["pd-0"]), ("bridge", ["pd-0", "pd-1"]),
                                              ("majorities_ring", ["pd-0", "pd-1"]),
                                              ("rings", NODES)])
def test_shapes_refuse_what_they_cannot_draw(shape: str, nodes: list[str]) -> None:
    with pytest.raises(ShapeError):
        grudge_for(shape, nodes, random.Random(0))


def test_grudge_sides_enforce_exactly_the_grudge_on_both_ends() -> None:
    g = majorities_ring(NODES, random.Random(7))
    sides = {s.node: s for s in grudge_sides(g, IPS)}
    by_ip = {ip: n for n, ip in IPS.items()}
    for a, b in permutations(NODES, 2):
        dropped_out = a in sides and IPS[b] in sides[a].egress
        dropped_in = b in sides and IPS[a] in sides[b].ingress
        assert dropped_out == dropped_in == (not reachable(g, a, b)), (a, b)
    assert all(by_ip[ip] in NODES for s in sides.values() for ip in s.egress + s.ingress)


TAG = Tag("run", 7, "abcdef", "1-f0.0")


def test_port_scoped_rules_match_the_port_at_either_end() -> None:
    (side,) = [s for s in plan_sides(["tikv-0"], ["pd-0"], IPS, "both") if s.node == "tikv-0"]
    rules = partition_rules(side, TAG, (2379,))
    assert len(rules) == 4  # (OUTPUT, INPUT) x (dport, sport)
    assert ("OUTPUT", ["-d", f"{IPS['pd-0']}/32", "-p", "tcp", "-m", "multiport", "--dports",
                       "2379", "-m", "comment", "--comment", str(TAG), "-j", "DROP"]) in rules
    assert any("--sports" in spec for _, spec in rules)


def test_a_partition_goes_in_with_one_restore() -> None:
    (side,) = [s for s in plan_sides(["tikv-0"], ["pd-0", "pd-1"], IPS, "both")
               if s.node == "tikv-0"]
    script = partition_apply_script(side, TAG)
    assert script.count("iptables-restore") == 1
    assert "iptables -" not in script
    assert script.count("-I OUTPUT 1 -d") == 2
    assert script.count("-I INPUT 1 -s") == 2
    assert "COMMIT" in script
