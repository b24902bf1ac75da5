"""Collection time for 10,000 generated case items (``pytest --collect-only``).

A suite of QA case files grows by copy and edit, so collection must stay cheap:
every case is parsed, validated (selectors, durations, topology) and turned into a
pytest item before anything runs. The bench writes ``FILES`` case files of
``CASES`` cases each into a temporary folder — the seeds' shape, with the fault
kind, selector, schedule and job kind varied per case so no two cases are alike —
and times ``pytest --collect-only -q`` on them in a subprocess (the plugin loads
from its entry point, as for a user). It also times the same command on an empty
folder: the difference is what the 10,000 items cost, free of interpreter and
plugin start-up.

Standalone: ``python bench/collection.py [--files 100 --cases 100]``.
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, BenchError, Row, Section, python, run_command, secs, tail, write_json  # noqa: E402

log = logging.getLogger("pytest_tidb_ha.bench")

FILES = 100
CASES = 100

#: (faultType, selector) pairs the generator cycles through: every injector and the
#: role selectors a QA matrix uses.
FAULTS = (
    ("network_partition", "tikv(random)_to_all"),
    ("network_partition", "pdleader_to_pdfollower(all)"),
    ("network_delay", "tidb(ddl_owner)_to_tikv(all)"),
    ("network_loss", "tikv(one)_to_pd(all)"),
    ("kill", "tidb(ddl_owner)"),
    ("pause", "tikv(50%)"),
    ("restart", "pd(random)"),
    ("io_delay", "tikv(random)"),
)
EXTRA = {"network_delay": "          latency: 50ms\n", "network_loss": "          loss: 30%\n",
         "io_delay": "          latency: 20ms\n"}

HEADER = """tag: "bench-generated-{n}"
workloads:
  - type: sysbench
    db: sbtest
    tableNum: 4
    tableSize: 10000
    threads: 8
    subType: oltp_read_write
    ignoreErrors: "all"
cases:
"""

ADD_INDEX = """    ddl:
      addIndex:
        - table: "sbtest{t}"
          timeout: 60m
          times: {times}
          index_col_name: "c"
          job_type: "{job_type}"
          distTask: {dist}
"""

IMPORT = """    importInto:
      - db: "importtest"
        table: "t{t}"
        source: "/import/t{t}.*.csv"
        format: "csv"
        generate:
          rows: 1000
          files: 2
        createTable: "CREATE TABLE IF NOT EXISTS importtest.t{t} (id BIGINT PRIMARY KEY, c VARCHAR(20))"
        timeout: 30m
"""


def case_text(i: int) -> str:
    """Case number *i* of a file: a different fault, schedule and job each time."""
    kind, selector = FAULTS[i % len(FAULTS)]
    instant = kind == "restart"
    lines = [
        f'  - name: "bench_{i:03d}_{kind}"\n',
        f"    warmUpTime: {1 + i % 3}m\n",
        f"    faultType: {kind}\n",
        f'    selector: "{selector}"\n',
        f'    period: "@every {4 + i % 4}m"\n',
        f"    faultDuration: {'0s' if instant else f'{1 + i % 2}m'}\n",
        "    faultTotalRunTime: 30m\n",
    ]
    extra = EXTRA.get(kind)
    if extra:
        lines.append(extra.replace("          ", "    "))
    if i % 4 == 3:
        lines.append(IMPORT.format(t=i))
    else:
        ingest = bool(i % 2)  # DXF on needs fast reorg (txn + distTask: on is refused)
        lines.append(ADD_INDEX.format(t=1 + i % 4, times=1 + i % 3,
                                      job_type="ingest" if ingest else "txn",
                                      dist="on" if ingest and i % 3 else "off"))
    return "".join(lines)


def generate(folder: Path, files: int, cases: int) -> int:
    """Write the case files; returns the number of cases written."""
    for f in range(files):
        body = HEADER.format(n=f) + "".join(case_text(i) for i in range(cases))
        (folder / f"generated_{f:03d}.yaml").write_text(body)
    return files * cases


_COLLECTED = re.compile(r"(\d+) tests? collected in ([0-9.]+)s")


@dataclass(frozen=True)
class Collected:
    items: int
    pytest_seconds: float  # what pytest reports ("collected in X s")
    wall: float  # the whole subprocess
    cpu: float  # user + system CPU seconds of the subprocess (robust to a loaded machine)


def collect(folder: Path, timeout: float) -> Collected:
    """Run ``pytest --collect-only`` in *folder* and time it."""
    cmd = [python(), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
           "--rootdir", str(folder), str(folder)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = run_command(cmd, timeout=timeout, cwd=folder)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = done.stdout + done.stderr
    m = _COLLECTED.search(text)
    if m:
        return Collected(int(m.group(1)), float(m.group(2)), wall, cpu)
    if "no tests collected" in text:
        found = re.search(r"in ([0-9.]+)s", text)
        return Collected(0, float(found.group(1)) if found else wall, wall, cpu)
    raise BenchError(f"pytest --collect-only failed (exit {done.returncode}):\n{tail(text, 30)}")


def run(*, files: int = FILES, cases: int = CASES, timeout: float = 240.0) -> Section:
    section = Section("collection")
    with tempfile.TemporaryDirectory(prefix="tidb-ha-bench-collect-") as tmp:
        root = Path(tmp)
        empty = root / "empty"
        suite = root / "suite"
        empty.mkdir()
        suite.mkdir()
        t = time.monotonic()
        expected = generate(suite, files, cases)
        gen_s = time.monotonic() - t
        base = collect(empty, timeout)
        got = collect(suite, timeout)
    items = got.items
    if items != expected:
        raise BenchError(f"collected {items} items, generated {expected}")
    net_cpu = max(got.cpu - base.cpu, 1e-9)
    section.data = {
        "files": files, "cases_per_file": cases, "items": items,
        "generate_seconds": round(gen_s, 2), "wall_seconds": round(got.wall, 2),
        "cpu_seconds": round(got.cpu, 2),
        "pytest_reported_seconds": round(got.pytest_seconds, 2),
        "empty_wall_seconds": round(base.wall, 2), "empty_cpu_seconds": round(base.cpu, 2),
        "items_per_second_wall": round(items / got.wall, 1),
        "items_per_cpu_second_net": round(items / net_cpu, 1),
        "ms_cpu_per_item_net": round(net_cpu / items * 1000, 3),
    }
    section.rows = [
        Row(f"collect {items:,} case items ({files} files)", secs(got.wall),
            f"{items / got.wall:,.0f} items/s wall (pytest: {got.pytest_seconds:.1f} s); "
            f"CPU {got.cpu:.1f} s = {items / net_cpu:,.0f} items per CPU-second net of "
            f"start-up ({base.cpu:.1f} s CPU for an empty folder)"),
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=FILES)
    ap.add_argument("--cases", type=int, default=CASES)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    section = run(files=args.files, cases=args.cases)
    for row in section.rows:
        print(f"{row.figure:45} {row.value:>10}  {row.detail}")  # noqa: T201 - bench output
    write_json(RESULTS / "collection.json", section.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
