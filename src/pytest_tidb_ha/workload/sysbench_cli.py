"""The ``sysbench`` binary's command line and output, as data (pure).

What we run is sysbench's own ``oltp_read_write`` (or ``_read_only`` /
``_write_only``) script through a four-line wrapper (:func:`wrapper_script`)
that ``require``\\ s it unchanged and adds one line of output per ignored
error with its MySQL code: sysbench's per-second report only says ``err/s``,
and its debug log collapses repeated messages, so neither tells which codes a
fault produced. The transaction, its statements and the error handling are
sysbench's.

The report line this module reads (``--report-interval=1``, sysbench 1.0)::

    [ 3s ] thds: 4 tps: 331.80 qps: 6665.76 (r/w/o: 4669.24/1330.93/665.59) \
lat (ms,99%): 20.00 err/s: 0.00 reconn/s: 0.00
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import IgnorePolicy
from .metrics import Sample
from .statements import SUBTYPES
from .target import Target

#: The one latency percentile sysbench reports per interval; 99 is what the
#: report layer draws (``p99``).
PERCENTILE = 99
ERROR_PREFIX = "tidb-ha: error "
STARTED = "Threads started!"

_WRAPPER = """\
-- pytest-tidb-ha: sysbench's own {script}.lua, unchanged, plus one output line per
-- ignored error with its MySQL code (the per-second report only counts them).
require("{script}")
local inner = sysbench.hooks.before_restart_event
function sysbench.hooks.before_restart_event(errdesc)
   io.stdout:write(string.format("{prefix}%d %s\\n", tonumber(errdesc.sql_errno) or -1,
      (string.gsub(tostring(errdesc.sql_errmsg or ""), "[\\r\\n]", " "))))
   if inner then inner(errdesc) end
end
"""


def wrapper_script(subtype: str) -> str:
    """The Lua file sysbench runs for ``subtype`` (one of sysbench's OLTP scripts)."""
    if subtype not in SUBTYPES:
        raise ValueError(f"sysbench has no script {subtype!r}; expected one of "
                         f"{', '.join(SUBTYPES)}")
    return _WRAPPER.format(script=subtype, prefix=ERROR_PREFIX)


def config_text(password: str) -> str:
    """``--config-file`` content: the password, so it is never on a command line."""
    if not password:
        return ""
    for quote in ('"', "'"):
        if quote not in password and "\n" not in password:
            return f"mysql-password={quote}{password}{quote}\n"
    raise ValueError("the password holds both quote characters (or a newline): "
                     "sysbench's config file cannot carry it")


def ignore_errors_arg(policy: IgnorePolicy) -> str:
    """``--mysql-ignore-errors`` value: ``all``, a comma list, or empty (none)."""
    return str(policy) if policy.ignore == "all" or policy.ignore else ""


@dataclass(frozen=True)
class Run:
    """Everything the command line says about one workload run."""

    db: str
    subtype: str
    tables: int
    table_size: int
    threads: int
    ignore: IgnorePolicy
    ps_mode: str = "auto"  # "disable": the server has no prepared statements
    seed: int = 0  # 0: sysbench seeds from the clock
    rand_type: str | None = None  # None: sysbench's default ("special"), as QA runs it


def command(binary: str, script: str, config: str | None, run: Run,
            target: Target) -> list[str]:
    """``sysbench <script> ... run`` against every endpoint of ``target``."""
    lists = target.host_port_lists()
    if lists is None:
        raise ValueError(f"sysbench cannot name exactly the endpoints of {target!r}")
    hosts, ports = lists
    if run.ps_mode not in ("auto", "disable"):
        raise ValueError(f"db-ps-mode {run.ps_mode!r}: expected auto or disable")
    cmd = [binary, script]
    if config:
        cmd.append(f"--config-file={config}")
    cmd += [
        f"--mysql-host={','.join(hosts)}",
        f"--mysql-port={','.join(map(str, ports))}",
        f"--mysql-user={target.user}",
        f"--mysql-db={run.db}",
        f"--tables={run.tables}",
        f"--table-size={run.table_size}",
        f"--threads={run.threads}",
        f"--mysql-ignore-errors={ignore_errors_arg(run.ignore)}",
        f"--db-ps-mode={run.ps_mode}",
        "--report-interval=1",
        f"--percentile={PERCENTILE}",
        "--time=0",  # until we stop it
        f"--rand-seed={run.seed}",
    ]
    if run.rand_type:
        cmd.append(f"--rand-type={run.rand_type}")
    cmd.append("run")
    return cmd


# -- output ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    """One ``--report-interval`` line."""

    t: float  # seconds since the threads started (end of the interval)
    threads: int
    tps: float
    qps: float
    reads: float
    writes: float
    other: float
    percentile: int
    latency_ms: float
    errors_per_s: float
    reconnects_per_s: float


@dataclass(frozen=True)
class IgnoredError:
    """A wrapper line: sysbench ignored (and counted) this error."""

    code: int
    message: str


@dataclass(frozen=True)
class Fatal:
    """A ``FATAL:`` line; ``code`` when it names a MySQL error."""

    code: int | None
    message: str


@dataclass(frozen=True)
class Started:
    """``Threads started!``: every connection is up, the clock of the reports starts."""


Line = Report | IgnoredError | Fatal | Started

_NUM = r"(\d+(?:\.\d+)?)"
_REPORT = re.compile(
    rf"^\[ {_NUM}s \] thds: (\d+) tps: {_NUM} qps: {_NUM} \(r/w/o: {_NUM}/{_NUM}/{_NUM}\) "
    rf"lat \(ms,(\d+)%\): {_NUM} err/s: {_NUM} reconn/s: {_NUM}")
_RETURNED = re.compile(r"returned error (\d+) \((.*?)\)(?: for query '.*')?\s*$")
_ERROR_N = re.compile(r"^error (\d+): (.*)$")


def parse_line(line: str) -> Line | None:
    """What one output line says; None for lines that carry nothing we use."""
    line = line.rstrip("\r\n")
    if line.startswith("["):
        m = _REPORT.match(line)
        if m is None:
            return None
        g = m.groups()
        return Report(float(g[0]), int(g[1]), float(g[2]), float(g[3]), float(g[4]),
                      float(g[5]), float(g[6]), int(g[7]), float(g[8]), float(g[9]),
                      float(g[10]))
    if line.startswith(ERROR_PREFIX):
        code, _, message = line[len(ERROR_PREFIX):].partition(" ")
        try:
            return IgnoredError(int(code), message.strip())
        except ValueError:
            return None
    if line.startswith("FATAL: "):
        text = line[len("FATAL: "):].strip()
        m = _RETURNED.search(text) or _ERROR_N.match(text)
        if m is not None:
            return Fatal(int(m.group(1)), m.group(2))
        return Fatal(None, text)
    if line.strip() == STARTED:
        return Started()
    return None


def first_error(fatals: Sequence[Fatal]) -> Fatal | None:
    """The FATAL line to report: the first that names a MySQL code, else the first."""
    for f in fatals:
        if f.code is not None:
            return f
    return fatals[0] if fatals else None


def sample(report: Report, second: float, interval: float,
           errors: Mapping[int, int]) -> Sample:
    """A report line as a :class:`Sample` starting at ``second`` on the timeline clock.

    Counts are sysbench's per-second rates times the interval (sysbench prints
    rates with two decimals); its one latency percentile fills the matching
    field (``p99`` with :data:`PERCENTILE`), ``None`` when nothing committed.
    """
    lat = report.latency_ms if report.tps > 0 else None
    return Sample(second=second, interval=interval,
                  transactions=round(report.tps * interval),
                  queries=round(report.qps * interval), errors=dict(errors),
                  p50=lat if report.percentile == 50 else None,
                  p95=lat if report.percentile == 95 else None,
                  p99=lat if report.percentile == 99 else None)


_VERSION = re.compile(r"sysbench (\d+(?:\.\d+)*)")


def parse_version(text: str) -> str | None:
    """``sysbench 1.0.20 (using system LuaJIT ...)`` -> ``1.0.20``."""
    m = _VERSION.search(text)
    return m.group(1) if m else None
