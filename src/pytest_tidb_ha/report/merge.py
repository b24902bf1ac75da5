"""Merge the results of several shards (or runs) into one verdict summary.

A sharded CI run leaves one folder per shard job: its JUnit XML (``ha_*``
properties per testcase), its artifacts folder (``verdicts.json`` of kept
tests) and its ``shard-K-of-N.json`` (what the shard was given to run). A gate
must read *one* result, so :func:`merge` reads every folder and returns

* one :class:`~.summary.CaseSummary` per test (verdicts from the JUnit
  properties, case id and notes from ``verdicts.json`` where it was kept);
* the problems that make the merged result untrustworthy: a shard missing
  (``shard-2-of-3.json`` absent), a test a shard was given that no JUnit file
  reports (the shard job died), a test reported twice, shards of different N;
* one JUnit document with every testcase.

Reading and merging are pure over parsed files; only :func:`collect_inputs`
and :func:`write_junit` touch the file system. The CLI is
``python -m pytest_tidb_ha merge DIR...`` (:mod:`pytest_tidb_ha.__main__`).
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..verdicts import Verdict
from .artifacts import VERDICTS_JSON
from .summary import CaseSummary, summary_from_properties

SHARD_FILE = re.compile(r"^shard-(\d+)-of-(\d+)\.json$")
FAILING = ("failed", "error")


def junit_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) that pytest's junitxml writes for ``nodeid`` (no ``junit_prefix``)."""
    path, sep, tail = nodeid.partition("::")
    if not sep:
        return "", re.sub(r"\.py$", "", path.replace("/", "."))
    name_part, bracket, params = tail.partition("[")
    names = [re.sub(r"\.py$", "", path.replace("/", ".")), *name_part.split("::")]
    if bracket:
        names[-1] += "[" + params
    return ".".join(names[:-1]), names[-1]


def testcase_outcome(case: ET.Element) -> str:
    """``failed`` / ``error`` / ``skipped`` / ``passed`` from a ``<testcase>``'s children."""
    tags = {child.tag for child in case}
    if "error" in tags:
        return "error"
    if "failure" in tags:
        return "failed"
    if "skipped" in tags:
        return "skipped"
    return "passed"


@dataclass(frozen=True)
class JUnitCase:
    """One ``<testcase>`` as read from a shard's JUnit file."""

    classname: str
    name: str
    outcome: str
    properties: tuple[tuple[str, str], ...]
    element: ET.Element = field(compare=False, repr=False)
    source: str = ""  # the file it came from, for messages

    @property
    def address(self) -> tuple[str, str]:
        return self.classname, self.name


def parse_junit(text: str, source: str = "") -> list[JUnitCase]:
    """Every ``<testcase>`` of a JUnit document (``<testsuites>`` or one ``<testsuite>``)."""
    root = ET.fromstring(text)  # noqa: S314 - JUnit files our own shards wrote
    if root.tag not in ("testsuites", "testsuite"):
        raise ValueError(f"{source or 'document'}: not JUnit XML (root <{root.tag}>)")
    out = []
    for case in root.iter("testcase"):
        props = tuple((p.get("name", ""), p.get("value", "")) for p in case.iter("property"))
        out.append(JUnitCase(case.get("classname", ""), case.get("name", ""),
                             testcase_outcome(case), props, case, source))
    return out


@dataclass(frozen=True)
class ShardRecord:
    """A ``shard-K-of-N.json``: which items shard K of N was given."""

    index: int
    count: int
    items: tuple[str, ...]
    source: str = ""


def parse_shard_record(text: str, source: str = "") -> ShardRecord:
    data = json.loads(text)
    return ShardRecord(int(data["shard"]), int(data["of"]),
                       tuple(str(i["id"]) for i in data.get("items", [])), source)


@dataclass(frozen=True)
class KeptVerdicts:
    """A kept artifacts folder's ``verdicts.json`` (case id, notes, outcome, verdicts)."""

    folder: str  # the folder's name: the sanitised node id
    path: Path
    data: dict[str, Any]


@dataclass
class MergeResult:
    tests: list[CaseSummary]  # every test with HA verdicts, for the verdict table
    outcomes: dict[str, int]  # passed/failed/error/skipped -> count, over all tests
    problems: list[str]
    junit: ET.Element
    shards: list[ShardRecord]
    failing: list[tuple[str, str]] = field(default_factory=list)  # (outcome, test id)

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(self.outcomes.get(o, 0) for o in FAILING)

    def totals_line(self) -> str:
        n = sum(self.outcomes.values())
        parts = ", ".join(f"{self.outcomes.get(o, 0)} {o}"
                          for o in ("passed", "failed", "error", "skipped"))
        what = (f"{len(self.shards)} shard(s) of {self.shards[0].count}" if self.shards
                else "results without shard records")
        return f"tidb-ha merge: {what}: {n} tests: {parts}"


def _verdicts_from_json(data: dict[str, Any]) -> tuple[Verdict, ...]:
    out = []
    for v in data.get("verdicts", []) or []:
        out.append(Verdict(job_key=str(v.get("job_key", "")), kind=str(v.get("kind", "")),
                           job_id=v.get("job_id"), verdict=v.get("verdict", ""),
                           reason=str(v.get("reason", "")), ok=bool(v.get("ok")),
                           started_at=v.get("started_at"), decided_at=v.get("decided_at")))
    return tuple(out)


def merge(cases: Sequence[JUnitCase], shards: Sequence[ShardRecord] = (),
          kept: Sequence[KeptVerdicts] = ()) -> MergeResult:
    """Merge parsed inputs (see the module doc); never raises on inconsistent inputs."""
    problems: list[str] = []
    # -- shards: one N, every K, each given item reported ------------------------------
    nodeids: dict[tuple[str, str], str] = {}
    by_index: dict[int, ShardRecord] = {}
    counts = sorted({s.count for s in shards})
    if len(counts) > 1:
        problems.append(f"shard records of different N: {', '.join(map(str, counts))} "
                        f"({', '.join(s.source for s in shards)})")
    for s in shards:
        if s.index in by_index and by_index[s.index].items != s.items:
            problems.append(f"shard {s.index}/{s.count} recorded twice, differently "
                            f"({by_index[s.index].source}, {s.source})")
        by_index.setdefault(s.index, s)
        for nodeid in s.items:
            nodeids[junit_address(nodeid)] = nodeid
    if len(counts) == 1:
        missing = [k for k in range(1, counts[0] + 1) if k not in by_index]
        if missing:
            problems.append(f"no results of shard(s) {', '.join(f'{k}/{counts[0]}' for k in missing)}"
                            " (shard-K-of-N.json not found): the merged result is incomplete")

    # -- testcases: each once ------------------------------------------------------------
    seen: dict[tuple[str, str], JUnitCase] = {}
    for c in cases:
        other = seen.get(c.address)
        if other is not None and other.source != c.source:
            problems.append(f"{c.classname}::{c.name} is reported by both {other.source} and "
                            f"{c.source} (shards overlap or a result was passed twice)")
            continue
        seen.setdefault(c.address, c)
    reported = set(seen)
    for s in shards:
        lost = [n for n in s.items if not _reported(junit_address(n), reported)]
        if lost:
            problems.append(f"shard {s.index}/{s.count} was given {len(lost)} test(s) that no "
                            f"JUnit file reports (did the job die?): {', '.join(lost[:5])}"
                            + (" ..." if len(lost) > 5 else ""))

    # -- summaries -------------------------------------------------------------------------
    kept_by_folder = {k.folder: k for k in kept}
    used: set[str] = set()
    tests: list[CaseSummary] = []
    outcomes: dict[str, int] = {}
    failing: list[tuple[str, str]] = []
    for c in seen.values():
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
        nodeid = nodeids.get(c.address) or _lookup(c.address, nodeids) or f"{c.classname}::{c.name}"
        if c.outcome in FAILING:
            failing.append((c.outcome, nodeid))
        summary = summary_from_properties(nodeid, c.properties, c.outcome)
        if summary is None:
            continue
        folder = dict(c.properties).get("ha_artifacts")
        k = kept_by_folder.get(Path(folder).name) if folder else None
        if k is not None:
            used.add(k.folder)
            summary = CaseSummary(nodeid=summary.nodeid, case_id=k.data.get("case_id"),
                                  verdicts=summary.verdicts, outcome=summary.outcome,
                                  artifacts=k.path.parent,
                                  notes=tuple(str(n) for n in k.data.get("notes", []) or []))
        tests.append(summary)
    for k in kept:  # kept folders no JUnit file mentions (the run had no --junitxml)
        if k.folder in used:
            continue
        outcome = str(k.data.get("outcome", "error"))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome in FAILING:
            failing.append((outcome, str(k.data.get("nodeid", k.folder))))
        tests.append(CaseSummary(nodeid=str(k.data.get("nodeid", k.folder)),
                                 case_id=k.data.get("case_id"),
                                 verdicts=_verdicts_from_json(k.data), outcome=outcome,
                                 artifacts=k.path.parent,
                                 notes=("no JUnit record: read from verdicts.json",)))
    tests.sort(key=lambda t: t.nodeid)
    return MergeResult(tests, outcomes, problems, merged_junit(list(seen.values()), outcomes),
                       sorted(by_index.values(), key=lambda s: s.index), sorted(failing))


def _reported(address: tuple[str, str], reported: set[tuple[str, str]]) -> bool:
    """Also accept a classname with a ``--junit-prefix`` in front."""
    if address in reported:
        return True
    return any(name == address[1] and cls.endswith("." + address[0]) for cls, name in reported)


def _lookup(address: tuple[str, str], nodeids: dict[tuple[str, str], str]) -> str | None:
    for (cls, name), nodeid in nodeids.items():
        if name == address[1] and address[0].endswith("." + cls):
            return nodeid
    return None


def merged_junit(cases: Sequence[JUnitCase], outcomes: dict[str, int]) -> ET.Element:
    """One ``<testsuites>`` with one ``<testsuite>`` holding every testcase (copied)."""
    time = sum(float(c.element.get("time", "0") or 0) for c in cases)
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", {
        "name": "tidb-ha merged", "tests": str(len(cases)),
        "failures": str(outcomes.get("failed", 0)), "errors": str(outcomes.get("error", 0)),
        "skipped": str(outcomes.get("skipped", 0)), "time": f"{time:.3f}"})
    for c in cases:
        suite.append(copy.deepcopy(c.element))
    return root


# -- the file system edge ---------------------------------------------------------------

@dataclass
class Inputs:
    cases: list[JUnitCase] = field(default_factory=list)
    shards: list[ShardRecord] = field(default_factory=list)
    kept: list[KeptVerdicts] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable files
    junit_files: list[Path] = field(default_factory=list)


def _files(paths: Iterable[Path]) -> list[Path]:
    """Files under ``paths``, each once (a folder given twice, or inside another, counts once)."""
    out: dict[Path, Path] = {}
    for p in paths:
        found = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in found:
            if f.is_file():
                out.setdefault(f.resolve(), f)
    return list(out.values())


def collect_inputs(paths: Sequence[Path], *, exclude: Path | None = None) -> Inputs:
    """Read every JUnit ``*.xml``, ``shard-K-of-N.json`` and ``verdicts.json`` under ``paths``."""
    inputs = Inputs()
    skip = exclude.resolve() if exclude is not None else None
    for f in _files(paths):
        if skip is not None and f.resolve() == skip:
            continue
        try:
            if f.suffix == ".xml":
                text = f.read_text(encoding="utf-8")
                if "<testsuite" not in text[:2000]:
                    continue  # some other XML
                inputs.cases += parse_junit(text, str(f))
                inputs.junit_files.append(f)
            elif SHARD_FILE.match(f.name):
                inputs.shards.append(parse_shard_record(f.read_text(encoding="utf-8"), str(f)))
            elif f.name == VERDICTS_JSON:
                data = json.loads(f.read_text(encoding="utf-8"))
                inputs.kept.append(KeptVerdicts(f.parent.name, f, data))
        except (OSError, ValueError, KeyError, ET.ParseError) as exc:
            inputs.problems.append(f"{f}: unreadable: {exc}")
    return inputs


def write_junit(root: ET.Element, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
