"""Partition shapes as Jepsen's *grudges* (pure): node -> the nodes it refuses.

``jepsen.nemesis``: ``partition-halves`` (bisect the nodes, complete grudge),
``bridge`` (two halves and one node that talks to both), ``partition-majorities-ring``
(every node sees a majority of the cluster, no two nodes the same majority). The
nodes are shuffled by the window's own generator (seeded from ``--ha-seed``), so
a seed replays the same groups.

A grudge means: a packet from X to Y is dropped iff X is in ``grudge[Y]`` (Jepsen
drops on the receiver's INPUT). :func:`grudge_sides` turns that into our two-sided
rules: Y drops X's packets on INPUT and X drops them on OUTPUT, so a node that
restarts on either side stays cut -- the connectivity is exactly the grudge's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .api import node_sort_key

if TYPE_CHECKING:
    from .network import Side

Grudge = Mapping[str, frozenset[str]]

#: Fewest nodes each shape needs to mean anything.
MIN_NODES = {"halves": 2, "bridge": 3, "majorities_ring": 3}


class ShapeError(ValueError):
    """A shape that cannot be drawn over these nodes (the message says why)."""


def _shuffled(nodes: Sequence[str], rng: random.Random) -> list[str]:
    out = sorted(set(nodes), key=node_sort_key)  # the draw must not depend on input order
    rng.shuffle(out)
    return out


def bisect(nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Jepsen's ``bisect``: the first half has the extra node of an odd count."""
    k = math.ceil(len(nodes) / 2)
    return list(nodes[:k]), list(nodes[k:])


def complete_grudge(components: Sequence[Sequence[str]]) -> dict[str, frozenset[str]]:
    """Every node refuses every node outside its own component."""
    everyone = {n for c in components for n in c}
    return {n: frozenset(everyone - set(c)) for c in components for n in c}


def halves(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    return complete_grudge(bisect(_shuffled(nodes, rng)))


def bridge(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Two halves cut apart, except the first node of the second half, which keeps
    talking to both (and both to it)."""
    a, b = bisect(_shuffled(nodes, rng))
    middle = b[0]
    grudge = complete_grudge([a, b])
    return {n: g - {middle} for n, g in grudge.items() if n != middle} | {middle: frozenset()}


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """On a shuffled ring, each node sees the majority window centred on it."""
    ring = _shuffled(nodes, rng)
    n = len(ring)
    m = n // 2 + 1
    everyone = set(ring)
    grudge: dict[str, frozenset[str]] = {}
    for i in range(n):
        window = [ring[(i + j) % n] for j in range(m)]
        centre = window[m // 2]
        grudge[centre] = frozenset(everyone - set(window))
    return grudge


SHAPES = {"halves": halves, "bridge": bridge, "majorities_ring": majorities_ring}


def grudge_for(shape: str, nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    if shape not in SHAPES:
        raise ShapeError(f"unknown partition shape {shape!r} (known: {', '.join(SHAPES)})")
    if len(set(nodes)) < MIN_NODES[shape]:
        raise ShapeError(f"a {shape} partition needs at least {MIN_NODES[shape]} nodes, "
                         f"the selector gave {len(set(nodes))}: {', '.join(nodes)}")
    return SHAPES[shape](nodes, rng)


def grudge_sides(grudge: Grudge, ips: Mapping[str, str]) -> list[Side]:
    """Our per-container rules for a grudge (see the module doc)."""
    from .network import Side

    sides: list[Side] = []
    for node in sorted(grudge, key=node_sort_key):
        ingress = tuple(ips[x] for x in sorted(grudge[node], key=node_sort_key))
        egress = tuple(ips[y] for y in sorted(grudge, key=node_sort_key) if node in grudge[y])
        if ingress or egress:
            sides.append(Side(node, egress=egress, ingress=ingress))
    return sides


def reachable(grudge: Grudge, a: str, b: str) -> bool:
    """Whether a packet from ``a`` reaches ``b`` under ``grudge``."""
    return a not in grudge.get(b, frozenset())
