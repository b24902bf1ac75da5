"""The --ha-shard split (pure): a partition, balanced, clusters kept together, no empty shard."""

from __future__ import annotations

import random

import pytest

from pytest_tidb_ha.shard import (
    ShardSpec,
    Unit,
    parse_shard,
    plan_lines,
    plan_shard,
    split,
)


def _check(units: list[Unit], count: int) -> list[list[Unit]]:
    shards = split(units, count)
    assert len(shards) == count
    ids = [u.id for s in shards for u in s]
    assert sorted(ids) == sorted(u.id for u in units)  # union = selection, no overlap
    assert len(ids) == len(set(ids))
    if len(units) >= count:
        assert all(shards), [len(s) for s in shards]
    if units:
        loads = [sum(u.estimate for u in s) for s in shards]
        longest = max(u.estimate for u in units)
        assert max(loads) - min(loads) <= longest + 1e-9, (loads, longest)
    return shards


def _random_units(rng: random.Random, n: int) -> list[Unit]:
    groups = [None, "pd=1,tikv=1,tidb=1 a", "pd=1,tikv=3,tidb=1 a", "pd=3,tikv=3,tidb=2 a",
              "pd=1,tikv=1,tidb=2 b"]
    return [Unit(f"t{i:03d}", rng.choice([0.0, 1.0, 5.0, rng.uniform(1, 600), 1800.0]),
                 rng.choice(groups)) for i in range(n)]


@pytest.mark.parametrize("seed", range(40))
def test_random_selections_partition_and_balance(seed: int) -> None:
    rng = random.Random(seed)
    units = _random_units(rng, rng.randint(0, 40))
    for count in range(1, 8):
        _check(units, count)


def test_deterministic_whatever_the_input_order() -> None:
    units = _random_units(random.Random(7), 30)
    expected = [[u.id for u in s] for s in split(units, 4)]
    for seed in range(5):
        shuffled = units[:]
        random.Random(seed).shuffle(shuffled)
        assert [[u.id for u in s] for s in split(shuffled, 4)] == expected


def test_groups_stay_together_when_the_balance_allows() -> None:
    # two clusters of equal weight, two shards: one cluster per shard, nothing split
    units = [Unit(f"a{i}", 10.0, "A") for i in range(4)] + [Unit(f"b{i}", 20.0, "B")
                                                            for i in range(2)]
    shards = _check(units, 2)
    assert sorted({u.group for u in s} == {"A"} or {u.group for u in s} == {"B"}
                  for s in shards) == [True, True]


def test_a_group_heavier_than_a_share_is_split() -> None:
    units = [Unit(f"a{i}", 10.0, "A") for i in range(6)]
    shards = _check(units, 3)
    assert [len(s) for s in shards] == [2, 2, 2]


def test_no_empty_shard_when_items_outnumber_shards() -> None:
    # one huge item and a small cluster: the small cluster gives items away
    units = [Unit("big", 2.0, "X"), Unit("s1", 0.3, "S"), Unit("s2", 0.3, "S"),
             Unit("s3", 0.4, "S")]
    shards = _check(units, 3)
    assert all(shards)


def test_fewer_items_than_shards_leaves_shards_empty() -> None:
    shards = _check([Unit("a", 1.0), Unit("b", 2.0)], 4)
    assert sorted(len(s) for s in shards) == [0, 0, 1, 1]


def test_bound_is_tight_for_three_equal_items() -> None:
    shards = _check([Unit(x, 5.0) for x in "abc"], 2)
    assert sorted(sum(u.estimate for u in s) for s in shards) == [5.0, 10.0]


def test_zero_estimates_still_spread() -> None:
    shards = _check([Unit(f"t{i}", 0.0) for i in range(6)], 3)
    assert [len(s) for s in shards] == [2, 2, 2]


@pytest.mark.parametrize(("text", "expected"), [("1/1", ShardSpec(1, 1)), (" 2/5 ", ShardSpec(2, 5))])
def test_parse_shard(text: str, expected: ShardSpec) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("3", "not K/N"), ("a/b", "whole numbers"), ("0/3", "between 1 and N=3"),
    ("4/3", "between 1 and N=3"), ("1/0", "at least one shard")])
def test_parse_shard_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_split_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unique"):
        split([Unit("a", 1.0), Unit("a", 2.0)], 2)
    with pytest.raises(ValueError, match="negative"):
        split([Unit("a", -1.0)], 2)
    with pytest.raises(ValueError, match="at least one"):
        split([], 0)


def test_plan_lines_show_share_and_split_clusters() -> None:
    units = [Unit(f"a{i}", 60.0, "A") for i in range(3)] + [Unit("p", 1.0)]
    plan = plan_shard(units, ShardSpec(1, 2))
    text = "\n".join(plan_lines(plan, verbose=True))
    assert text.startswith(f"tidb-ha shard 1/2: {len(plan.units)} of 4 selected items, estimate ")
    assert "an even share is 50%" in text
    assert "cluster A:" in text
    assert "(split: other shards run it too)" in text
    assert plan.to_json()["of"] == 2


def test_the_shipped_scenarios_split_within_one_matrix_cell() -> None:
    """The estimates of ``pytest scenarios/ --ha-time-scale 0.1 --ha-workload-scale 0.0001``:
    twenty matrix cells of ~35 s on four clusters, and the three seeds (42 s, 179 s, 173 s)."""
    units = ([Unit(f"kill{i}", 35.0, "1/1/2") for i in range(4)]
             + [Unit(f"pd{i}", 35.0, "3/1/1") for i in range(8)]
             + [Unit(f"delay{i}", 35.0, "1/1/1") for i in range(4)]
             + [Unit(f"tikv{i}", 35.0, "1/3/1") for i in range(4)]
             + [Unit("s46735", 42.0, "1/1/2"), Unit("s48303", 179.0, "1/3/1"),
                Unit("s48546", 173.0, "3/1/1")])
    for count in (2, 3, 4, 5):
        loads = [sum(u.estimate for u in s) for s in _check(units, count)]
        assert max(loads) - min(loads) <= 35.0, (count, loads)
