"""Selector resolution is a pure function of (selector, nodes, roles, rng)."""

from __future__ import annotations

import random
from typing import ClassVar

import pytest

from pytest_tidb_ha.faults.api import Roles
from pytest_tidb_ha.faults.resolve import (
    Resolved,
    ResolveError,
    resolve,
    resolve_nodes,
    roles_needed,
)
from pytest_tidb_ha.scenario.selectors import parse_selector

NODES = ["pd-0", "pd-1", "pd-2", "tikv-0", "tikv-1", "tikv-2", "tikv-3", "tidb-0", "tidb-1"]
ROLES = Roles(pd_leader="pd-1", pd_members=("pd-0", "pd-1", "pd-2"), ddl_owner="tidb-1")


def res(text: str, seed: int = 0, roles: Roles = ROLES, nodes: list[str] = NODES) -> Resolved:
    return resolve_nodes(parse_selector(text), nodes, roles, random.Random(seed))


@pytest.mark.parametrize(
    ("text", "targets"),
    [
        ("pd", ("pd-0", "pd-1", "pd-2")),
        ("pdleader", ("pd-1",)),
        ("pdfollower", ("pd-0", "pd-2")),
        ("pdfollower(all)", ("pd-0", "pd-2")),
        ("pdfollower(one)", ("pd-0",)),
        ("tikv", ("tikv-0", "tikv-1", "tikv-2", "tikv-3")),
        ("tidb(one)", ("tidb-0",)),
        ("ddlowner", ("tidb-1",)),
        ("tidb(ddl_owner)", ("tidb-1",)),
        ("tikv-2", ("tikv-2",)),
        ("all", tuple(NODES)),
    ],
)
def test_single_side_groups(text: str, targets: tuple[str, ...]) -> None:
    r = res(text)
    assert r.sources == ()
    assert r.targets == targets


def test_random_is_one_member_and_seeded() -> None:
    picks = {res("tikv(random)", seed=s).targets for s in range(40)}
    assert all(len(p) == 1 and p[0].startswith("tikv-") for p in picks)
    assert len(picks) > 1, "random never varied over 40 seeds"
    assert res("tikv(random)", seed=7).targets == res("tikv(random)", seed=7).targets


def test_count_and_percent() -> None:
    assert len(res("tikv(2)").targets) == 2
    assert len(set(res("tikv(2)").targets)) == 2
    assert len(res("tikv(50%)").targets) == 2
    assert len(res("tikv(1%)").targets) == 1  # rounded up, at least one
    assert len(res("tikv(100%)").targets) == 4
    with pytest.raises(ResolveError, match="needs 5 node"):
        res("tikv(5)")


def test_to_all_means_every_other_node() -> None:
    r = res("tikv(random)_to_all", seed=3)
    assert len(r.sources) == 1
    assert set(r.targets) == set(NODES) - set(r.sources)


def test_pdleader_to_pdfollower() -> None:
    r = res("pdleader_to_pdfollower(all)")
    assert r.sources == ("pd-1",)
    assert r.targets == ("pd-0", "pd-2")
    assert r.roles["pd_leader"] == "pd-1"


def test_target_never_contains_a_source() -> None:
    r = res("tikv(one)_to_tikv")
    assert r.sources == ("tikv-0",)
    assert r.targets == ("tikv-1", "tikv-2", "tikv-3")


def test_roles_move_between_windows() -> None:
    other = Roles(pd_leader="pd-2", pd_members=ROLES.pd_members, ddl_owner="tidb-0")
    assert res("pdleader", roles=other).targets == ("pd-2",)
    assert res("pdfollower", roles=other).targets == ("pd-0", "pd-1")
    assert res("ddlowner", roles=other).targets == ("tidb-0",)


def test_unknown_roles_and_names_fail_with_a_story() -> None:
    with pytest.raises(ResolveError, match="no leader"):
        res("pdleader", roles=Roles())
    with pytest.raises(ResolveError, match="DDL owner"):
        res("ddlowner", roles=Roles(pd_leader="pd-0"))
    with pytest.raises(ResolveError, match="no node named 'tikv-9'"):
        res("tikv-9")
    with pytest.raises(ResolveError, match="no node to pick"):
        res("pdfollower", nodes=["pd-0", "tikv-0"], roles=Roles(pd_leader="pd-0"))
    with pytest.raises(ResolveError, match="without the source"):
        res("tikv_to_tikv")


def test_natural_order_of_names() -> None:
    nodes = [f"tikv-{i}" for i in range(12)]
    assert res("tikv(one)", nodes=nodes).targets == ("tikv-0",)
    assert res("tikv", nodes=nodes).targets[-1] == "tikv-11"


def test_roles_needed() -> None:
    assert roles_needed(parse_selector("pdleader_to_pdfollower(all)")) == {"pd_leader"}
    assert roles_needed(parse_selector("tidb(ddl_owner)")) == {"ddl_owner"}
    assert roles_needed(parse_selector("tikv(random)_to_all")) == frozenset()
    assert roles_needed(None) == frozenset()


def test_resolve_looks_roles_up_only_when_needed() -> None:
    class N:
        def __init__(self, name: str) -> None:
            self.name = name

    class C:
        nodes: ClassVar[list[N]] = [N(n) for n in NODES]

    asked: list[frozenset[str]] = []

    def roles(cluster: object, need: frozenset[str]) -> Roles:
        asked.append(need)
        return ROLES

    assert resolve(parse_selector("tikv(one)"), C(), random.Random(0), roles=roles).targets == ("tikv-0",)
    assert asked == []
    assert resolve(parse_selector("pdleader"), C(), random.Random(0), roles=roles).targets == ("pd-1",)
    assert asked == [frozenset({"pd_leader"})]
