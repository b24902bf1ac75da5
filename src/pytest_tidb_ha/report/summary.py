"""Text of the terminal section ``tidb-ha verdicts`` and the header line (pure).

A QA engineer must see in ten seconds which job ended how and why, so each
job gets one aligned line — case, job, verdict, duration, the one-sentence
reason — and each kept artifacts folder is named right below its case. The
header says what the run was against and prints a command that reproduces it
with every resolved option spelled out (options may have come from env or
ini, which a colleague re-running the command would not have).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..options import HAOptions, default_images
from ..redact import redact
from ..verdicts import Verdict

SECTION_TITLE = "tidb-ha verdicts"


@dataclass(frozen=True)
class CaseSummary:
    """What the summary needs of one finished test (built by the hooks)."""

    nodeid: str
    case_id: str | None
    verdicts: tuple[Verdict, ...]
    outcome: str  # passed | failed | skipped | error
    artifacts: Path | None = None  # None: removed by the keep policy / never written
    notes: tuple[str, ...] = field(default=())
    faults: str | None = None  # "applied/planned" fault windows (JUnit ha_faults)

    @property
    def name(self) -> str:
        return self.case_id or self.nodeid


def summary_from_properties(nodeid: str, props: Iterable[tuple[str, object]],
                            outcome: str) -> CaseSummary | None:
    """Rebuild a test's summary from its JUnit properties (reports sent by pytest-xdist
    workers carry ``user_properties`` but not the record). ``None`` without ``ha_jobs``."""
    values = {k: str(v) for k, v in props}
    if "ha_jobs" not in values:
        return None
    try:
        jobs = json.loads(values["ha_jobs"])
    except ValueError:
        return None
    verdicts = []
    for j in jobs if isinstance(jobs, list) else []:
        duration = j.get("duration_s")
        verdicts.append(Verdict(
            job_key=str(j.get("key", "")), kind=str(j.get("kind", "")), job_id=j.get("id"),
            verdict=j.get("verdict", ""), reason=str(j.get("reason", "")),
            ok=bool(j.get("ok")), started_at=0.0 if duration is not None else None,
            decided_at=duration))
    art = values.get("ha_artifacts")
    return CaseSummary(nodeid, None, tuple(verdicts), outcome, Path(art) if art else None,
                       faults=values.get("ha_faults"))


def format_duration(seconds: float | None) -> str:
    """``0.8s``, ``18s``, ``4m05s``, ``1h02m`` — short and sortable by eye."""
    if seconds is None:
        return "-"
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        m, sec = divmod(round(s), 60)
        return f"{m}m{sec:02d}s"
    h, rem = divmod(round(s), 3600)
    return f"{h}h{rem // 60:02d}m"


def job_label(v: Verdict) -> str:
    """``add_index#1 (job 475)`` — the stable key plus TiDB's job id when known."""
    jid = f" (job {v.job_id})" if v.job_id is not None else ""
    key = v.job_key or v.kind
    return f"{key}{jid}"


def _one_sentence(text: str) -> str:
    """The reason on one line (newlines would break the aligned table)."""
    return " ".join(redact(text or "").split())


def summary_lines(tests: Iterable[CaseSummary], artifacts_root: Path | None = None,
                  keep: str = "failed") -> list[str]:
    """Lines of the ``tidb-ha verdicts`` section; empty when no test had a record."""
    tests = list(tests)
    if not tests:
        return []
    rows: list[tuple[CaseSummary, list[tuple[str, str, str, str, str]]]] = []
    for t in tests:
        cells: list[tuple[str, str, str, str, str]] = [
            (t.name, job_label(v), str(v.verdict), format_duration(v.duration),
             _one_sentence(v.reason)) for v in t.verdicts]
        if not cells:
            cells = [(t.name, "(no jobs)", t.outcome, "-", "")]
        rows.append((t, cells))
    widths = [max(len(c[i]) for _, cells in rows for c in cells) for i in range(4)]
    out: list[str] = []
    for t, cells in rows:
        for c in cells:
            line = "  ".join(c[i].ljust(widths[i]) for i in range(4))
            out.append(f"{line}  {c[4]}".rstrip())
        if t.faults and t.faults != "0/0":
            out.append(f"    faults applied/planned: {t.faults}")
        for note in t.notes:
            out.append(f"    note: {_one_sentence(note)}")
        if t.artifacts is not None:
            out.append(f"    artifacts: {t.artifacts}")
    if artifacts_root is not None:
        out.append(f"artifacts folder: {artifacts_root} (--ha-artifacts-keep={keep})")
    return [redact(line) for line in out]


# -- header ------------------------------------------------------------------------

#: Options the reproduce command spells out (value-taking, as parsed by plugin.py).
_OWN_OPTIONS = ("--tidb-version", "--tidb-image", "--tidb-topology", "--tidb-dsn",
                "--tidb-pd-url", "--ha-time-scale", "--ha-workload-scale",
                "--ha-workload-driver", "--ha-seed")


def _strip_options(args: Sequence[str], names: Sequence[str]) -> list[str]:
    """*args* without ``--opt value`` / ``--opt=value`` for each name in *names*."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in names:
            skip = True
            continue
        if any(a.startswith(n + "=") for n in names):
            continue
        out.append(a)
    return out


def resolved_option_args(opts: HAOptions) -> list[str]:
    """The options that pin this run, with their resolved values."""
    out = ["--tidb-version", opts.tidb_version]
    defaults = default_images(opts.tidb_version)
    for comp, image in sorted(opts.images.items()):
        if defaults.get(comp) != image:
            out += ["--tidb-image", f"{comp}={image}"]
    if opts.topology is not None:
        out += ["--tidb-topology", str(opts.topology)]
    if opts.dsn:
        out += ["--tidb-dsn", opts.dsn]
    if opts.pd_url:
        out += ["--tidb-pd-url", opts.pd_url]
    out += ["--ha-time-scale", f"{opts.time_scale:g}"]
    if opts.workload_scale != 1.0:
        out += ["--ha-workload-scale", f"{opts.workload_scale:g}"]
    if opts.workload_driver != "auto":
        out += ["--ha-workload-driver", opts.workload_driver]
    if opts.seed is not None:
        out += ["--ha-seed", str(opts.seed)]
    return out


def reproduce_command(args: Sequence[str], opts: HAOptions, program: str = "pytest") -> str:
    """A shell command that re-runs this session with every HA option explicit."""
    rest = _strip_options(list(args), _OWN_OPTIONS)
    return redact(shlex.join([program, *rest, *resolved_option_args(opts)]))


def header_lines(opts: HAOptions, args: Sequence[str]) -> list[str]:
    """Lines for ``pytest_report_header``: what the run is against and how to repeat it."""
    images = " ".join(f"{c}={i}" for c, i in sorted(opts.images.items()))
    topo = str(opts.topology) if opts.topology is not None else "sized per case"
    target = f"existing cluster {opts.dsn}" if opts.dsn else f"images {images}"
    first = (f"tidb-ha: TiDB {opts.tidb_version}, {target}, topology {topo}, "
             f"time scale {opts.time_scale:g}")
    if opts.seed is not None:
        first += (f", fault seed {opts.seed}" + (" (picked for this run; --ha-seed "
                                                 f"{opts.seed} replays it)"
                                                 if opts.seed_picked else ""))
    if opts.dry_run:
        first += " (dry run)"
    return [redact(first), f"tidb-ha reproduce: {reproduce_command(args, opts)}"]
