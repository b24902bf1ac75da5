from __future__ import annotations

import pytest

from pytest_tidb_ha.scenario.model import Quantifier, Topology
from pytest_tidb_ha.scenario.selectors import (
    SelectorError,
    check_selector,
    parse_selector,
    selector_problems,
)


def test_seed_selector_tikv_random_to_all() -> None:
    sel = parse_selector("tikv(random)_to_all")
    assert sel.source.group == "tikv"
    assert sel.source.quantifier == Quantifier("random")
    assert sel.target is not None
    assert sel.target.group == "all"
    assert sel.target.quantifier == Quantifier("all")
    assert str(sel) == "tikv(random)_to_all"


def test_seed_selector_pdleader_to_followers() -> None:
    sel = parse_selector("pdleader_to_pdfollower(all)")
    assert (sel.source.group, sel.target and sel.target.group) == ("pdleader", "pdfollower")


@pytest.mark.parametrize("text", ["tidb(ddl_owner)", "ddlowner", "ddl_owner"])
def test_ddl_owner_spellings(text: str) -> None:
    sel = parse_selector(text)
    assert sel.source.group == "ddlowner"
    assert sel.target is None


@pytest.mark.parametrize(
    ("text", "mode", "value"),
    [("tikv(one)", "one", None), ("tikv(all)", "all", None), ("tikv(2)", "count", 2),
     ("tidb(50%)", "percent", 50), ("pd", "all", None)],
)
def test_quantifiers(text: str, mode: str, value: int | None) -> None:
    assert parse_selector(text).source.quantifier == Quantifier(mode, value)


def test_node_name() -> None:
    sel = parse_selector("tikv-1_to_pd-0")
    assert sel.source.group == "node"
    assert sel.source.name == "tikv-1"
    assert sel.target is not None
    assert sel.target.name == "pd-0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tivk(random)", "did you mean 'tikv'"),
        ("tikv(some)", "not a node selector"),
        ("tikv(0)", "at least 1"),
        ("tikv(0%)", "between 1% and 100%"),
        ("tikv(101%)", "between 1% and 100%"),
        ("tikv_to_pd_to_tidb", "at most one"),
        ("", "not a selector"),
        ("pdleader_to_", "not a node selector"),
    ],
)
def test_bad_selectors(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_selector(text)


def test_pdfollower_with_one_pd_never_matches() -> None:
    with pytest.raises(SelectorError, match="no PD follower with 1 PD"):
        check_selector(parse_selector("pdleader_to_pdfollower(all)"), Topology(pd=1))
    check_selector(parse_selector("pdleader_to_pdfollower(all)"), Topology(pd=3))


def test_count_larger_than_group() -> None:
    with pytest.raises(SelectorError, match=r"tikv\(5\) needs 5 node\(s\) but the group 'tikv' has 3"):
        check_selector(parse_selector("tikv(5)"), Topology(tikv=3))
    check_selector(parse_selector("tikv(3)"), Topology(tikv=3))


def test_unknown_node_name() -> None:
    problems = selector_problems(parse_selector("tikv-3"), Topology(tikv=3))
    assert problems
    assert "tikv-0..tikv-2" in problems[0]
    assert not selector_problems(parse_selector("tikv-2"), Topology(tikv=3))


def test_target_side_must_keep_a_node() -> None:
    problems = selector_problems(parse_selector("all_to_all"), Topology())
    assert problems
    assert "no node is left" in problems[0]
    assert not selector_problems(parse_selector("tikv(random)_to_all"), Topology())
