"""--ha-shard K/N through pytest: the shards of any selection partition it, balanced.

Each run collects only (``--collect-only``), so nothing starts; the shard's plan
file (``<artifacts>/shard-K-of-N.json``) gives the planner's estimate of each item.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[2] / "scenarios" / "seeds"

MATRIX = """
import pytest

FAULTS = {
    "partition": pytest.mark.fault("network_partition", selector="tikv(random)_to_all",
                                   warmup="30s", duration="1m", period="2m", total="4m"),
    "pdleader": pytest.mark.fault("network_partition", selector="pdleader_to_pdfollower(all)",
                                  warmup="30s", duration="1m", period="2m", total="8m"),
    "kill": pytest.mark.fault("kill", selector="tidb(ddl_owner)", warmup="1m", duration="1m"),
    "delay": pytest.mark.fault("network_delay", selector="tikv(random)", latency="200ms",
                               warmup="30s", duration="1m"),
}

def cells():
    for name, mark in FAULTS.items():
        for job in ("add", "imp"):
            for dist in ("on", "off"):
                marks = [mark] + ([pytest.mark.smoke] if dist == "on" else [])
                yield pytest.param(job, marks=marks, id=f"{name}-{job}-{dist}")

@pytest.mark.workload("sysbench", tables=1, table_size=1000)
@pytest.mark.parametrize("job", list(cells()))
def test_cell(tidb, job):
    raise AssertionError("collect-only")

@pytest.mark.parametrize("n", range(5))
def test_plain(n):
    pass

def test_cluster_no_markers(tidb_cluster):
    pass
"""

KEYWORDS = ("partition", "pdleader", "kill", "delay", "add", "imp", "on", "off", "plain",
            "seed", "48303", "46735", "cluster")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_matrix=MATRIX)
    shutil.copytree(SEEDS, pytester.path / "seeds")
    pytester.makeini("[pytest]\nmarkers =\n    smoke: gate\n")
    return pytester


def _collected(pytester: pytest.Pytester, *args: str) -> tuple[list[str], int]:
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)
    assert result.ret in (0, 5), result.stdout.str()  # 5: nothing selected
    ids = [line for line in result.outlines if "::" in line and not line.startswith(" ")]
    m = re.search(r"(\d+) deselected", result.stdout.str())
    return ids, int(m.group(1)) if m else 0


def _random_selection(rng: random.Random) -> list[str]:
    args: list[str] = []
    if rng.random() < 0.7:
        words = rng.sample(KEYWORDS, rng.randint(1, 3))
        expr = f" {rng.choice(['or', 'and'])} ".join(words)
        if rng.random() < 0.3:
            expr = f"not ({expr})"
        args += ["-k", expr]
    if rng.random() < 0.2:
        args += ["-m", "not smoke"]
    if rng.random() < 0.3:
        args += ["--deselect", f"test_matrix.py::test_plain[{rng.randint(0, 4)}]"]
    if rng.random() < 0.3:
        args.append(rng.choice(["seeds", "test_matrix.py"]))
    return args


@pytest.mark.parametrize("seed", range(6))
def test_shards_partition_any_selection_balanced(project: pytest.Pytester, seed: int) -> None:
    rng = random.Random(seed)
    selection = _random_selection(rng)
    selected, _ = _collected(project, *selection)
    for count in range(1, 6):
        seen: list[str] = []
        loads: list[float] = []
        longest = 0.0
        for index in range(1, count + 1):
            art = project.path / f"art-{count}"
            ids, deselected = _collected(project, *selection, "--ha-shard", f"{index}/{count}",
                                         "--ha-artifacts", str(art))
            plan = json.loads((art / f"shard-{index}-of-{count}.json").read_text())
            assert [i["id"] for i in plan["items"]] == sorted(ids)
            assert plan["selected"] == len(selected)
            assert deselected >= len(selected) - len(ids)
            if len(selected) >= count:
                assert ids, f"shard {index}/{count} of {len(selected)} items is empty {selection}"
            seen += ids
            loads.append(sum(i["estimate_s"] for i in plan["items"]))
            longest = max([longest, *(i["estimate_s"] for i in plan["items"])])
        assert sorted(seen) == sorted(selected), (count, selection)  # union, no overlap
        assert len(seen) == len(set(seen))
        assert max(loads) - min(loads) <= longest + 1e-6, (count, loads, longest, selection)


def test_shard_prints_its_plan_and_counts_deselected(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-p", "no:cacheprovider", "--ha-shard", "2/3",
                               "-k", "partition or plain", "--ha-artifacts", "art",
                               "test_matrix.py")
    out = result.stdout.str()
    m = re.search(r"collected 22 items / (\d+) deselected / (\d) selected", out)
    assert m, out
    assert int(m.group(1)) + int(m.group(2)) == 22, out
    result.stdout.fnmatch_lines([
        "tidb-ha shard 2/3: * of 9 selected items, estimate * of * (*%; an even share is 33%)",
        "  cluster pd=1,tikv=3,tidb=1 *: * item(s)*",
    ])


def test_option_spellings_and_errors(project: pytest.Pytester,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = project.runpytest("--collect-only", "-q", "--ha-shard", "4/3")
    result.stderr.fnmatch_lines(["*--ha-shard='4/3': K=4: must be between 1 and N=3*"])
    monkeypatch.setenv("PYTEST_TIDB_HA_SHARD", "1/40")
    ids, _ = _collected(project, "test_matrix.py")
    assert len(ids) == 1  # 22 items, 40 shards: one item each at most
    monkeypatch.delenv("PYTEST_TIDB_HA_SHARD")
    project.makeini("[pytest]\nha_shard = x\n")
    result = project.runpytest("--collect-only", "-q")
    result.stderr.fnmatch_lines(["*ini ha_shard='x': not K/N*"])


def test_xdist_workers_split_alike_and_the_controller_prints_the_plan(
        project: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is a dev extra: pip install -e '.[dev]'")
    alone, _ = _collected(project, "-k", "plain or delay", "--ha-shard", "1/2",
                          "--ha-artifacts", "a1")
    result = project.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-p", "no:cacheprovider", "-k", "plain or delay", "--ha-shard", "1/2",
        "--ha-artifacts", "a2", "--ha-dry-run", "--junitxml=out.xml")
    cases = ET.parse(project.path / "out.xml").getroot().iter("testcase")
    ran = sorted(f"{c.get('classname')}.py::{c.get('name')}" for c in cases)
    assert ran == sorted(alone), result.stdout.str()
    assert json.loads((project.path / "a2" / "shard-1-of-2.json").read_text()) == \
        json.loads((project.path / "a1" / "shard-1-of-2.json").read_text())
    result.stdout.fnmatch_lines(["*= tidb-ha shard =*", "tidb-ha shard 1/2: * selected items*"])
