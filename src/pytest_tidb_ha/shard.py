"""``--ha-shard K/N``: split the selected items into N balanced shards (pure).

Every CI job of a sharded run collects the same selection and computes the same
split, then keeps shard K — so the shards' union is the selection and they never
overlap, whatever ``-k``/``-m``/paths chose. The split

* is **deterministic**: it depends on the items' ids, estimates and cluster keys
  only (sorted), never on the order pytest collected them in;
* is **balanced** by the planner's estimate (:mod:`.scenario.estimate`): the
  heaviest and the lightest shard differ by at most the longest single item;
* **keeps items that share a cluster together** (same topology and images: one
  cluster start per shard instead of one per item). A group is split only when
  the shard it would land on would otherwise carry more than its share
  (``total / N``);
* leaves **no shard empty** while there are at least as many items as shards.

How (three passes):

1. groups, heaviest first, each item to the shard its group already uses when it
   fits under the share, else to the least loaded shard when it fits there;
   items that fit nowhere are left over;
2. left-over items, longest first, to the least loaded shard (any empty one
   first: the classic LPT rule) — or to a shard that already runs their cluster
   when that raises no shard above what the LPT placement would;
3. while a shard is empty and another has two items or more, the heaviest such
   shard gives its lightest item away.

Why the bound holds: an item is left over in pass 1 only when every shard is
already within its size of the share, so pass 1 ends with a spread below the
longest item (or every shard exactly at the share); pass 2 places each item so
that no load exceeds the larger of the current maximum and the current minimum
plus the item;
pass 3 only moves load from a shard onto an empty one. (A strict "less than"
is impossible in general: three equal items on two shards.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    """``"2/5"`` -> ShardSpec(2, 5); K and N whole numbers with 1 <= K <= N."""
    k, sep, n = text.strip().partition("/")
    if not sep:
        raise ValueError("not K/N (e.g. 2/5: the second of five shards)")
    try:
        index, count = int(k), int(n)
    except ValueError:
        raise ValueError("not K/N with whole numbers (e.g. 2/5)") from None
    if count < 1:
        raise ValueError(f"N={count}: at least one shard")
    if not 1 <= index <= count:
        raise ValueError(f"K={index}: must be between 1 and N={count}")
    return ShardSpec(index, count)


@dataclass(frozen=True)
class Unit:
    """One item to place: its id, estimated wall seconds and cluster key (None: none)."""

    id: str
    estimate: float
    group: str | None = None

    @property
    def group_key(self) -> str:
        """Items without a cluster share nothing: each is a group of its own."""
        return self.group if self.group is not None else f"\0{self.id}"


class _Shards:
    def __init__(self, count: int) -> None:
        self.loads = [0.0] * count
        self.members: list[list[Unit]] = [[] for _ in range(count)]

    def place(self, index: int, unit: Unit) -> None:
        self.loads[index] += unit.estimate
        self.members[index].append(unit)

    def least_loaded(self, among: Iterable[int] | None = None) -> int:
        candidates = range(len(self.loads)) if among is None else among
        return min(candidates, key=lambda i: (self.loads[i], len(self.members[i]), i))

    def holds(self, index: int, group_key: str) -> bool:
        return any(u.group_key == group_key for u in self.members[index])


def split(units: Sequence[Unit], count: int) -> list[list[Unit]]:
    """``count`` shards of ``units`` (see the module doc); each shard sorted by id."""
    if count < 1:
        raise ValueError("at least one shard")
    ordered = sorted(units, key=lambda u: u.id)
    if len({u.id for u in ordered}) != len(ordered):
        raise ValueError("unit ids must be unique")
    if any(u.estimate < 0 for u in ordered):
        raise ValueError("estimates must not be negative")
    total = sum(u.estimate for u in ordered)
    share = total / count
    eps = 1e-9 * max(1.0, total)
    shards = _Shards(count)

    groups: dict[str, list[Unit]] = {}
    for u in ordered:
        groups.setdefault(u.group_key, []).append(u)
    by_weight = sorted(groups.items(), key=lambda kv: (-sum(u.estimate for u in kv[1]), kv[0]))

    # pass 1: whole groups while they fit under the share
    leftover: list[Unit] = []
    for _, members in by_weight:
        current: int | None = None
        for u in sorted(members, key=lambda u: (-u.estimate, u.id)):
            if current is not None and shards.loads[current] + u.estimate <= share + eps:
                shards.place(current, u)
                continue
            target = shards.least_loaded()
            if shards.loads[target] + u.estimate <= share + eps:
                shards.place(target, u)
                current = target
            else:
                leftover.append(u)

    # pass 2: what did not fit, longest first (LPT), near its cluster when that is fair
    for u in sorted(leftover, key=lambda u: (-u.estimate, u.id)):
        empty = [i for i in range(count) if not shards.members[i]]
        if empty:
            shards.place(empty[0], u)
            continue
        # LPT would give the least loaded shard this item: a shard that runs its cluster
        # already may take it instead when that raises no shard above what LPT would
        ceiling = max(max(shards.loads), min(shards.loads) + u.estimate)
        near = [i for i in range(count) if shards.holds(i, u.group_key)
                and shards.loads[i] + u.estimate <= ceiling + eps]
        shards.place(shards.least_loaded(near) if near else shards.least_loaded(), u)

    # pass 3: no empty shard while another has two items or more
    while True:
        empty = [i for i in range(count) if not shards.members[i]]
        donors = [i for i in range(count) if len(shards.members[i]) >= 2]
        if not empty or not donors:
            break
        donor = max(donors, key=lambda i: (shards.loads[i], -i))
        unit = min(shards.members[donor], key=lambda u: (u.estimate, u.id))
        shards.members[donor].remove(unit)
        shards.loads[donor] -= unit.estimate
        shards.place(empty[0], unit)

    return [sorted(m, key=lambda u: u.id) for m in shards.members]


def shard_of(units: Sequence[Unit], spec: ShardSpec) -> list[Unit]:
    """The units of shard ``spec.index`` of ``spec.count``."""
    return split(units, spec.count)[spec.index - 1]


@dataclass(frozen=True)
class ShardPlan:
    """What one shard runs, for the terminal and for ``merge`` to check completeness."""

    spec: ShardSpec
    selected: int  # items in the whole selection
    total: float  # estimate of the whole selection
    units: tuple[Unit, ...]  # this shard's
    shared_groups: tuple[str, ...] = ()  # this shard's cluster keys that other shards use too

    @property
    def load(self) -> float:
        return sum(u.estimate for u in self.units)

    def to_json(self) -> dict[str, object]:
        return {"shard": self.spec.index, "of": self.spec.count, "selected": self.selected,
                "estimate_s": round(self.load, 3), "total_estimate_s": round(self.total, 3),
                "items": [{"id": u.id, "estimate_s": round(u.estimate, 3), "cluster": u.group}
                          for u in self.units]}


def plan_shard(units: Sequence[Unit], spec: ShardSpec) -> ShardPlan:
    shards = split(units, spec.count)
    mine = shards[spec.index - 1]
    others = {u.group for i, s in enumerate(shards) if i != spec.index - 1 for u in s
              if u.group is not None}
    shared = tuple(sorted({u.group for u in mine if u.group is not None} & others))
    return ShardPlan(spec, len(units), sum(u.estimate for u in units), tuple(mine), shared)


def _fmt(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def plan_lines(plan: ShardPlan, *, verbose: bool = False) -> list[str]:
    """The shard's plan in words: its items, its share of the estimate, its clusters."""
    pct = 100.0 * plan.load / plan.total if plan.total > 0 else 100.0 / plan.spec.count
    lines = [f"tidb-ha shard {plan.spec}: {len(plan.units)} of {plan.selected} selected items, "
             f"estimate {_fmt(plan.load)} of {_fmt(plan.total)} ({pct:.0f}%; "
             f"an even share is {100.0 / plan.spec.count:.0f}%)"]
    counts: dict[str, int] = {}
    for u in plan.units:
        if u.group is not None:
            counts[u.group] = counts.get(u.group, 0) + 1
    for group, n in sorted(counts.items()):
        also = "  (split: other shards run it too)" if group in plan.shared_groups else ""
        lines.append(f"  cluster {group}: {n} item(s){also}")
    plain = sum(1 for u in plan.units if u.group is None)
    if plain:
        lines.append(f"  no cluster: {plain} item(s)")
    if verbose:
        lines += [f"    {u.id}  ~{_fmt(u.estimate)}" for u in plan.units]
    return lines
