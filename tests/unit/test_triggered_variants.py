"""The triggered variants (``scenarios/triggered/``) cannot drift from the seeds.

The seed files (``scenarios/seeds/``) stay verbatim and are the source of truth; each variant
is its seed plus ``when:`` job-state triggers, so the bug modes' demo and tests reproduce on
their first run (issue 12 item 5). These checks need no Docker: the YAML documents compared
with the variant's ``when:`` keys removed, and the loaded cases compared fault by fault.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_tidb_ha.scenario.loader import load_file
from pytest_tidb_ha.scenario.model import Case, Duration, FaultSpec, SourceRef

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEEDS = SCENARIOS / "seeds"
TRIGGERED = SCENARIOS / "triggered"
SEED_NAMES = sorted(p.stem for p in SEEDS.glob("*.yaml"))


def without_when(node: Any) -> Any:
    """The YAML document with every ``when:`` key removed (at any depth)."""
    if isinstance(node, dict):
        return {k: without_when(v) for k, v in node.items() if k != "when"}
    if isinstance(node, list):
        return [without_when(v) for v in node]
    return node


def trigger_free(variant: Any, seed: Any) -> tuple[Any, Any]:
    """Both documents with every ``when:`` of the variant removed, and at a fault that has
    one, ``warmUpTime`` on both sides: under a trigger it is the delay after the trigger
    fires (a variant may set it to 0s so the fault lands at the observation itself)."""
    if isinstance(variant, dict) and isinstance(seed, dict):
        drop = {"when", "warmUpTime"} if "when" in variant else {"when"}
        keys = [k for k in variant if k not in drop]
        return ({k: trigger_free(variant[k], seed.get(k))[0] for k in keys},
                {k: trigger_free(variant.get(k), seed[k])[1] for k in seed if k not in drop})
    if isinstance(variant, list) and isinstance(seed, list) and len(variant) == len(seed):
        pairs = [trigger_free(v, o) for v, o in zip(variant, seed, strict=True)]
        return [a for a, _ in pairs], [b for _, b in pairs]
    return without_when(variant), seed


def count_when(node: Any) -> int:
    if isinstance(node, dict):
        return int("when" in node) + sum(count_when(v) for v in node.values())
    if isinstance(node, list):
        return sum(count_when(v) for v in node)
    return 0


def test_every_seed_has_exactly_one_variant() -> None:
    assert SEED_NAMES == ["46735", "48303", "48546"]
    assert sorted(p.stem for p in TRIGGERED.glob("*.yaml")) == SEED_NAMES


@pytest.mark.parametrize("seed", SEED_NAMES)
def test_variant_is_the_seed_plus_when_keys(seed: str) -> None:
    original = yaml.safe_load((SEEDS / f"{seed}.yaml").read_text())
    variant = yaml.safe_load((TRIGGERED / f"{seed}.yaml").read_text())
    assert count_when(original) == 0, "the seed itself carries no trigger"
    assert count_when(variant) >= 1, "a variant without a trigger reproduces by luck"
    bare_variant, bare_seed = trigger_free(variant, original)
    assert bare_variant == bare_seed


@pytest.mark.parametrize("seed", SEED_NAMES)
def test_variant_text_adds_only_lines(seed: str) -> None:
    """Line by line: the seed's lines in order, plus comment lines and ``when:`` lines only
    (so even formatting cannot drift, and the header comment cannot hide a change)."""
    seed_lines = (SEEDS / f"{seed}.yaml").read_text().splitlines()
    added = []
    rest = iter(seed_lines)
    expected = next(rest, None)
    warmup = re.compile(r"^\s*warmUpTime: ")
    for line in (TRIGGERED / f"{seed}.yaml").read_text().splitlines():
        if line == expected:
            expected = next(rest, None)
        elif expected is not None and warmup.match(line) and warmup.match(expected):
            expected = next(rest, None)  # a triggered fault's delay after its trigger
        else:
            added.append(line)
    assert expected is None, f"seed line missing or changed in the variant: {expected!r}"
    stray = [a for a in added if not re.match(r"^\s*(#.*|when: \{.*\})$", a)]
    assert not stray, stray
    header = [a for a in added if a.startswith("#")]
    assert header, "the variant's header comment says where it comes from and why"
    assert f"scenarios/seeds/{seed}.yaml" in header[0]
    assert f"#{seed}" in header[0]


def _bare(obj: Any) -> Any:
    """*obj* with every ``source`` (file:line) blanked and every ``trigger`` removed, at any
    depth: what is left is what the plugin plans and runs. A fault's warm-up is left out:
    under a trigger the case's warm-up no longer applies (the loader drops it), and
    :func:`test_variant_is_the_seed_plus_when_keys` already holds every ``warmUpTime``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _bare(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, FaultSpec):
            changes["trigger"] = None
            changes["schedule"] = dataclasses.replace(obj.schedule, warmup=Duration(0.0, "-"))
        changes = {k: (SourceRef() if isinstance(v, SourceRef) else v) for k, v in changes.items()}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        return tuple(_bare(v) for v in obj)
    return obj


def _cases(path: Path) -> tuple[Case, ...]:
    cases = load_file(path)
    assert cases, path
    return cases


@pytest.mark.parametrize("seed", SEED_NAMES)
def test_loaded_variant_differs_only_by_triggers(seed: str) -> None:
    """What the plugin runs: the same cases, workloads, jobs and fault schedules; the
    variant's faults carry the triggers (the loader read them), the seed's none."""
    seeds, variants = _cases(SEEDS / f"{seed}.yaml"), _cases(TRIGGERED / f"{seed}.yaml")
    assert len(variants) == len(seeds)
    for s, v in zip(seeds, variants, strict=True):
        assert all(f.trigger is None for f in s.faults)
        assert any(f.trigger is not None for f in v.faults)
        assert _bare(v) == _bare(s)


#: The trigger each variant adds (the header comment of its file says why).
TRIGGERS = {
    "48303": {"state": None, "progress": 1.0, "import_step": None},
    "48546": {"state": None, "progress": 1.0, "import_step": None},
    "46735": {"state": None, "progress": None, "import_step": "importing"},
}


@pytest.mark.parametrize("seed", SEED_NAMES)
def test_variant_trigger_is_the_documented_one(seed: str) -> None:
    (case,) = _cases(TRIGGERED / f"{seed}.yaml")
    triggers = [f.trigger for f in case.faults if f.trigger is not None]
    assert len(triggers) == 1
    trig = triggers[0]
    assert trig.job == 1
    got = {"state": trig.state, "progress": trig.progress, "import_step": trig.import_step}
    assert got == TRIGGERS[seed]
