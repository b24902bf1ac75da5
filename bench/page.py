"""The bench's one table and its page (``docs/bench.md``): pure functions of the rows.

Every figure is a :class:`~common.Row`: its value beside its goal (issue 13; empty
when none is set) and its anchor measured in the same run (pytest's plain items,
Debian's sysbench, raw docker), with the ratio and the verdict against the goal.
:func:`table` prints them, :func:`markdown` writes the page. A section a run did not
measure (skipped for time, or measured by another script) keeps the figures of the
page it replaces, marked with their date: the page holds its rows as data (an HTML
comment) for that.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Set as AbstractSet
from typing import Any

from common import Row, Section

COLUMNS = ("figure", "value", "goal", "anchor", "ratio", "verdict", "detail")


def rows_of(sections: list[Section]) -> list[Row]:
    """The rows of *sections*, a failed section as one FAILED row."""
    rows: list[Row] = []
    for s in sections:
        rows += s.rows
        if s.error:
            rows.append(Row(f"{s.name}: FAILED", "-", s.error.splitlines()[0][:200]))
    return rows


def table(sections: list[Section]) -> str:
    """The printed table: one line per figure (value, ratio to its anchor, verdict against
    its goal, goal and anchor), its detail on the next line."""
    rows = rows_of(sections)
    width = max((len(r.figure) for r in rows), default=10)
    vwidth = max((len(r.value) for r in rows), default=5)
    lines = [f"{'figure':<{width}}  {'value':>{vwidth}}  {'ratio':>7}  {'verdict':<8} goal; anchor",
             "-" * (width + vwidth + 60)]
    for r in rows:
        lines.append(f"{r.figure:<{width}}  {r.value:>{vwidth}}  {r.ratio or '-':>7}  "
                     f"{r.verdict or '-':<8} {r.goal or 'no goal set'}; anchor: {r.anchor or '-'}")
        if r.detail:
            lines.append(f"{'':<{width}}  {r.detail}")
    return "\n".join(lines)


#: Where ``docs/bench.md`` keeps its rows as data, so the next run can carry over the
#: figures it did not measure (with their date) instead of dropping them.
DATA_BEGIN, DATA_END = "<!-- bench-rows ", " -->"


def page_rows(page: str) -> tuple[str | None, list[dict[str, str]]]:
    """The date and rows (``section`` + the :data:`COLUMNS`) an earlier page holds.

    Reads the data block this module writes; a page from before it (a ``figure | value |
    detail`` table) is read from its table, each row's section named by its figure.
    """
    if DATA_BEGIN in page:
        block = page.split(DATA_BEGIN, 1)[1].split(DATA_END, 1)[0]
        with contextlib.suppress(ValueError, KeyError, TypeError):
            data = json.loads(block)
            return data["date"], [dict(r) for r in data["rows"]]
    date = None
    rows: list[dict[str, str]] = []
    header: list[str] = []
    for line in page.splitlines():
        if line.startswith("- **Date:**"):
            date = line.split("**Date:**", 1)[1].strip()
        if not line.startswith("|"):
            header = [] if not line.strip() else header
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not header:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        row = dict(zip(header, cells, strict=False))
        figure = row.get("figure", "")
        section = next((name for prefix, name in LEGACY_SECTIONS if figure.startswith(prefix)),
                       None)
        if section and "FAILED" not in figure:
            rows.append({"section": section, **{c: row.get(c, "") for c in COLUMNS}})
    return date, rows


#: Figure prefixes of pages written before the data block (which names the section).
LEGACY_SECTIONS = (("collect", "collection"), ("cold start", "coldstart"), ("fault", "faults"),
                   ("verdict latency", "verdict_latency"), ("workload tps", "watcher_overhead"),
                   ("workload client", "workload"))


def carried_rows(previous: str, measured: AbstractSet[str],
                 partial: AbstractSet[str] = frozenset(),
                 figures: AbstractSet[str] = frozenset()) -> list[dict[str, str]]:
    """Rows of the previous page whose section this run did not measure, marked with the
    date of the run that did. Of a ``partial`` section (a run of some of its figures, e.g.
    ``bench/reproductions.py --seeds 46735``) the rows whose figure this run did not
    measure are carried over too; a section measured whole drops the figures it no longer
    has."""
    date, rows = page_rows(previous)
    out = []
    for row in rows:
        section = row["section"]
        if section in measured and (section not in partial or row.get("figure") in figures):
            continue
        note = row.get("detail", "")
        if not note.startswith("carried over from"):
            note = f"carried over from the {date or 'earlier'} run (not measured in this one); {note}"
        out.append({**row, "detail": note})
    return out


def markdown(report: dict[str, Any], previous: str = "") -> str:
    """``docs/bench.md``: the figures of one run (from its ``all.json``), with where and when;
    figures of sections this run did not measure are carried over from *previous* (the
    page as it was), marked with their date."""
    m = report["machine"]
    rows: list[dict[str, str]] = []
    measured = set()
    for section in report["sections"].values():
        if section["rows"]:
            measured.add(section["name"])
        for row in section["rows"]:
            rows.append({"section": section["name"], **{c: row.get(c, "") for c in COLUMNS}})
        if section["error"]:
            rows.append({"section": section["name"], "figure": f"{section['name']}: FAILED",
                         "value": "-", "detail": section["error"].splitlines()[0][:300]})
    figures = {r["figure"] for r in rows}
    carried = (carried_rows(previous, measured, set(report.get("partial", ())), figures)
               if previous else [])
    lines = [
        "# Benchmark figures",
        "",
        "Written by `.venv/bin/python bench/run.py --markdown docs/bench.md` from one run of the",
        "bench; what each figure means and how to run it: [`bench/README.md`](../bench/README.md).",
        "Each figure stands beside its goal (issue 13; `-` where none is set) and its anchor,",
        "measured in the same run: pytest's own plain items, Debian's sysbench, raw docker.",
        "",
        f"- **Date:** {m['date']}",
        f"- **Machine:** {m['cpus']} cores, {m['mem_gib']} GiB, Linux {m['kernel']}, "
        f"Docker {m['docker']}, Python {m['python']}",
        f"- **Load average** (1/5/15 min) at the start {m['loadavg_at_start']}, at the end "
        f"{m.get('loadavg_at_end')}: the machine was shared with other work; wall-clock figures "
        "scale with it, side-by-side ratios much less.",
        (f"- **This run:** `{report['script']}` alone, {report['total_seconds']:.0f} s"
         if report.get("script") else
         f"- **Whole bench:** {report['total_seconds']:.0f} s (budget {report['budget_seconds']:.0f} s)"
         + (f"; not run for lack of time: {', '.join(report['skipped'])}" if report["skipped"] else "")),
        f"- **Cluster image:** the stand-in (a test double of PD/TiKV/TiDB), `{report['image']}`",
    ]
    if carried:
        lines.append("- **Carried over:** figures of " + ", ".join(sorted({r["section"] for r in carried}))
                     + " were not measured in this run; they are the earlier run's, dated in "
                       "their detail.")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|---|---:|---|---|---:|---|---|"]
    for row in rows + carried:
        cells = [row.get(c) or ("-" if c in ("goal", "anchor", "ratio", "verdict") else "")
                 for c in COLUMNS]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    data = {"date": m["date"], "rows": rows + carried}
    lines += ["", "## Reading these figures", "", *NOTES, "",
              DATA_BEGIN + json.dumps(data, separators=(",", ":")).replace("--", "-\\u002d") + DATA_END,
              ""]
    return "\n".join(lines)


#: Standing caveats of the bench's set-up (facts of the code, not of one run).
NOTES = (
    "- The cluster is the stand-in, a Python test double: its absolute speed says nothing "
    "about TiDB. The figures measure the plugin's own costs (start-up machinery, collection, "
    "fault injection, polling) and how soon its verdicts come.",
    "- Faults: apply / heal are the injector's own `apply()` / `heal()`, from the planned "
    "time's call to the change being in place (rules committed, container killed, paused, "
    "started); the probe that then proves the effect (`fault.verified`) is timed apart, in "
    "the detail. Each run's shells, interfaces and NFQUEUE delayers start before the first "
    "window (`nemesis.warmup`), outside these figures. The anchor is the same action done raw "
    "in the same run: Docker's own API calls for kill / pause / restart, one `nsenter` + "
    "`iptables-restore` per change for the network kinds. The \"kill\" row is the default "
    "`--ha-kill-mode=silent` on containers whose PID 1 is the plugin's `sh` supervisor: the "
    "apply SIGKILLs the server process (as root next to a local engine through pidfds held "
    "since warm-up) until it is gone, then silences the node towards its peers with one "
    "`iptables-restore`; the heal deletes those rules and signals the supervisor until a new "
    "server process exists, no Docker call. \"kill (process mode)\" is the same without the "
    "silence. Their anchors are Docker's kill and start of the same container. \"kill "
    "(container mode)\" is `--ha-kill-mode=container`: SIGKILL to the init process through "
    "its pidfd, Docker recording the exit a moment later (in the verify time); its heal is a "
    "`docker start`, so it can be no faster than its anchor and has no goal of its own: "
    "issue 13's 100 ms is the default mode's. `restart`'s figure is `docker restart` (the "
    "bench's servers, like tidb/pd/tikv and the stand-in, exit on SIGTERM), beside the "
    "process's own start: from the container's start until the server accepts connections.",
    "- Watcher overhead: the stand-in's TiDB is one Python process, so every statement the "
    "watcher sends competes with the workload's in that process, and at a few tps on a loaded "
    "machine one window's tps moves by tens of percent. Expect a much smaller share against a "
    "real TiDB; the statements/s figure is the load the watcher adds either way.",
    "- Cold start: plugin and raw runs alternate, but on a loaded shared machine one "
    "repetition's ratio swings with the load of the minute it ran in (Docker's own container "
    "starts vary by 2x); the budget adds repetitions when it can. For a steadier ratio run "
    "`bench/coldstart.py --reps 5` on a quiet machine.",
    "- Seed reproductions (`bench/reproductions.py`, run on its own): k of N runs of each "
    "triggered seed variant (`scenarios/triggered/`) whose first job run got the seed's bug "
    "verdict in the stand-in's bug mode, each run on a fresh cluster, no retries.",
    "- Verdict latency: the wall figure includes the time fault windows paused the stall "
    "clock (by design); the fault-free part minus the stall window is what detection adds.",
    "- Collection: CPU seconds of `pytest --collect-only`, net of start-up, beside pytest "
    "collecting as many plain parametrized items in the same run; the lowest of the "
    "repetitions (load only adds). Warm = the case cache under `.pytest_cache` filled; "
    "cold = the first run, which writes it. CPU time on these machines is noisy beyond "
    "what the lowest of 15 repetitions removes: the same plain collection under the "
    "plugin, run six times back to back twice, had least CPU 0.82 s and 1.02 s (2026-12-01 "
    "21:30 UTC); so the cold figure has measured 2.74x (previous machine, 15:18 UTC), "
    "1.99x (this one, 17:56 UTC) and 1.85x-1.90x today, and plain items under the plugin "
    "1.00x (17:56 UTC) and 1.16x-1.38x today with no change to their path. Instruction "
    "counts (cachegrind, the same on every machine, net of start-up) are the steadier "
    "reading: plain items under the plugin 4.18 G against pytest's 4.03 G (1.04x, 21:25 "
    "UTC); cases cold 12.0 G against pytest's 4.07 G (2.95x, 17:25 UTC, before the freeze "
    "below), no cache 10.61 G after it against 10.85 G before (-2.2%). Since 2026-12-01 "
    "21:00 UTC the collected objects are frozen for the session (`gc.freeze` at the end of collection, "
    "undone by the session's last cleanup), so pytest's closing full collections no longer "
    "walk 260,000 case objects. Much of the cases' extra work is C (libyaml, pickle), "
    "whose speed beside pytest's interpreted code differs between CPUs and under a busy "
    "sibling core. Where the cases' CPU goes beyond pytest's own (in-process, 10,000 "
    "cases, 2026-12-01): libyaml composing the files ~0.5 s (its bare event parse is ~0.4 "
    "s of it), reading the nodes into cases ~0.45 s, building the items ~0.45 s (about "
    "half of it each item resolving its own fixture closure: pytest resolves a "
    "parametrized test's closure once and offers no public way to share one), and, cold, "
    "pickling the cache ~0.15 s.",
    "- Workload client: the plugin's Python driver against Debian's sysbench on MariaDB, the "
    "same 20 statements per transaction, the clients taking turns (two rounds, pooled); CPU "
    "is the client's user + system time. Where `sysbench` is installed the plugin runs it "
    "instead (docs/workload.md).",
)
