"""The selector grammar: which nodes a fault hits.

Grammar (whitespace-free, case-sensitive, as in the QA case files)::

    selector   := side ["_to_" side]          # SOURCE_to_TARGET: network faults
    side       := group ["(" quantifier ")"]
                | component "(" role ")"       # pd(leader), tidb(ddl-owner)
                | node                         # pd-0, tikv-1, tidb-2
    group      := pd | pdleader | pdfollower | tikv | tidb | ddlowner | all
    component  := pd | tikv | tidb
    role       := leader | follower            # pd only (= pdleader / pdfollower)
                | ddl-owner | ddl_owner | owner  # tidb only (= ddlowner)
    quantifier := random | one | all | N | N%

Meaning: no quantifier = every member of the group; ``(random)`` one node
chosen at random (seeded per run); ``(one)`` one node, the first by name
(deterministic); ``(N)`` N nodes at random; ``(N%)`` that share of the group,
rounded up, at least one. On the target side of ``_to_``, ``all`` means every
node that is not a source. A role names the node(s) holding it when the
window opens: ``pd(leader)`` the PD leader, ``pd(follower)`` every PD follower
(like ``pdfollower``), ``tidb(ddl-owner)`` the DDL owner (QA's files spell it
with a hyphen, #47954; ``ddl_owner`` and ``owner`` mean the same).

Parsing is pure; :func:`check_selector` checks a parsed selector against a
known :class:`~.model.Topology` (the faults layer resolves it against the
live cluster later).
"""

from __future__ import annotations

import difflib
import math
import re

from .model import NodeSelector, Quantifier, Selector, Topology

#: The components, whose nodes are named ``<component>-<index>`` (``tikv-1``).
COMPONENTS: tuple[str, ...] = ("pd", "tikv", "tidb")
GROUPS: tuple[str, ...] = ("pd", "pdleader", "pdfollower", "tikv", "tidb", "ddlowner", "all")
#: ``component(role)`` -> the group that holds the role (resolved live when a window opens).
ROLES: dict[str, dict[str, str]] = {
    "pd": {"leader": "pdleader", "follower": "pdfollower"},
    "tidb": {"ddl-owner": "ddlowner", "ddl_owner": "ddlowner", "owner": "ddlowner"},
    "tikv": {},
}
QUANTIFIERS = ("random", "one", "all")
#: Whole sides that name a group by another spelling.
ALIASES: dict[str, str] = {"ddl_owner": "ddlowner", "ddl-owner": "ddlowner"}
_NODE = re.compile(rf"^({'|'.join(COMPONENTS)})-(\d+)$")
_SIDE = re.compile(r"^([a-z_]+)(?:\(([a-z_-]+|\d+%?)\))?$")
SEPARATOR = "_to_"


class SelectorError(ValueError):
    """A selector that does not parse, or can never match the topology."""


def _close(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _suggest(word: str) -> str:
    return _close(word, [*GROUPS, "tidb(ddl-owner)", "pd(leader)"])


def _role_side(text: str, component: str, role: str) -> NodeSelector:
    roles = ROLES[component]
    if role not in roles:
        known = ", ".join(f"{c}({r})" for c, rs in ROLES.items() for r in rs)
        why = (f"{component} has no role {role!r}" if roles or component != "tikv"
               else "tikv has no single leader (every region has its own)")
        raise SelectorError(
            f"{text!r} is not a node selector: {why}; (...) takes a quantifier "
            f"({', '.join(QUANTIFIERS)}, N, N%) or a role ({known})"
            f"{_close(role, [*QUANTIFIERS, *roles])}"
        )
    group = roles[role]
    quantifier = Quantifier("one") if group == "ddlowner" else Quantifier("all")
    return NodeSelector(group=group, quantifier=quantifier, text=text)


def parse_side(text: str) -> NodeSelector:
    """Parse one side (``tikv(random)``, ``pdleader``, ``tikv-1``, ``tidb(ddl-owner)``)."""
    if text in ALIASES:
        return NodeSelector(group=ALIASES[text], quantifier=Quantifier("one"), text=text)
    node = _NODE.match(text)
    if node:
        return NodeSelector(group="node", name=text, quantifier=Quantifier("one"), text=text)
    match = _SIDE.match(text)
    if not match:
        raise SelectorError(
            f"{text!r} is not a node selector (group[(random|one|all|N|N%)], "
            f"component(role) like pd(leader), or a node name like tikv-1){_suggest(text)}"
        )
    group, quant = match.group(1), match.group(2)
    if group not in GROUPS:
        raise SelectorError(
            f"unknown selector group {group!r} in {text!r}; groups: {', '.join(GROUPS)}"
            f"{_suggest(group)}"
        )
    if quant is None:
        quantifier = Quantifier("all")
    elif quant in QUANTIFIERS:
        quantifier = Quantifier(quant)  # type: ignore[arg-type]
    elif not quant[0].isdigit():
        if group not in ROLES:
            raise SelectorError(
                f"{text!r} is not a node selector: {group} takes a quantifier "
                f"({', '.join(QUANTIFIERS)}, N, N%){_close(quant, list(QUANTIFIERS))}"
            )
        return _role_side(text, group, quant)
    elif quant.endswith("%"):
        value = int(quant[:-1])
        if not 0 < value <= 100:
            raise SelectorError(f"{text!r}: a percentage must be between 1% and 100%")
        quantifier = Quantifier("percent", value)
    else:
        value = int(quant)
        if value < 1:
            raise SelectorError(f"{text!r}: a node count must be at least 1")
        quantifier = Quantifier("count", value)
    return NodeSelector(group=group, quantifier=quantifier, text=text)


def parse_selector(text: object) -> Selector:
    """Parse ``SOURCE`` or ``SOURCE_to_TARGET``; the error names the text."""
    if not isinstance(text, str) or not text.strip():
        raise SelectorError(f"{text!r} is not a selector (e.g. tikv(random), pdleader_to_pdfollower(all))")
    raw = text.strip()
    parts = raw.split(SEPARATOR)
    if len(parts) > 2:
        raise SelectorError(f"{raw!r}: at most one '{SEPARATOR}' (SOURCE_to_TARGET)")
    try:
        source = parse_side(parts[0])
        target = parse_side(parts[1]) if len(parts) == 2 else None
    except SelectorError as exc:
        raise SelectorError(f"selector {raw!r}: {exc}") from None
    return Selector(source=source, target=target, text=raw)


def group_size(side: NodeSelector, topology: Topology) -> int:
    """How many nodes the side's group has in ``topology`` (before the quantifier)."""
    return {
        "pd": topology.pd,
        "pdleader": 1 if topology.pd >= 1 else 0,
        "pdfollower": topology.pd - 1,
        "tikv": topology.tikv,
        "tidb": topology.tidb,
        "ddlowner": 1 if topology.tidb >= 1 else 0,
        "all": topology.pd + topology.tikv + topology.tidb,
        "node": 1,
    }[side.group]


def picked(side: NodeSelector, size: int) -> int:
    """How many nodes the quantifier picks from a group of ``size``."""
    q = side.quantifier
    if q.mode == "all":
        return size
    if q.mode in ("one", "random"):
        return min(1, size)
    if q.mode == "count":
        return min(q.value or 0, size)
    return min(size, max(1, math.ceil(size * (q.value or 0) / 100))) if size else 0


def side_problems(side: NodeSelector, topology: Topology) -> list[str]:
    """Why ``side`` can never match ``topology`` (empty when it can)."""
    problems: list[str] = []
    if side.group == "node":
        match = _NODE.match(side.name or "")
        assert match is not None
        component, index = match.group(1), int(match.group(2))
        count = getattr(topology, component)
        if index >= count:
            problems.append(
                f"node {side.name!r} does not exist: the topology has {count} {component} "
                f"node(s) ({component}-0..{component}-{count - 1})"
            )
        return problems
    size = group_size(side, topology)
    if size <= 0:
        why = {
            "pdfollower": f"there is no PD follower with {topology.pd} PD",
        }.get(side.group, f"the group {side.group!r} is empty in {topology}")
        problems.append(f"{side} can never match: {why}")
    elif side.quantifier.mode == "count" and (side.quantifier.value or 0) > size:
        problems.append(
            f"{side} needs {side.quantifier.value} node(s) but the group {side.group!r} has "
            f"{size} in {topology}"
        )
    return problems


def selector_problems(selector: Selector, topology: Topology) -> list[str]:
    """Every reason ``selector`` can never match ``topology``."""
    problems = side_problems(selector.source, topology)
    if selector.target is not None:
        problems += side_problems(selector.target, topology)
        if not problems:
            src = selector.source
            tgt = selector.target
            if tgt.group == "all":
                others = group_size(tgt, topology) - picked(src, group_size(src, topology))
                if others <= 0:
                    problems.append(f"{selector}: no node is left on the target side in {topology}")
            elif src.text == tgt.text and src.quantifier.mode == "all":
                problems.append(f"{selector}: source and target are the same nodes")
    return problems


def check_selector(selector: Selector, topology: Topology) -> None:
    """Raise :class:`SelectorError` when ``selector`` can never match ``topology``."""
    problems = selector_problems(selector, topology)
    if problems:
        raise SelectorError("; ".join(problems))
