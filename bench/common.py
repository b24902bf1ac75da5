"""What every bench shares: the time budget, rows of the one table, results, clean-up.

The benches measure; they never assume. Every figure in a :class:`Row` comes from a
run made by the bench that reports it. Progress goes to the ``pytest_tidb_ha.bench``
logger; only ``bench/run.py`` prints (the table).

Docker resources a bench creates carry the plugin's labels (``org.pytest-tidb-ha.*``)
with a bench-only run id, so :func:`remove_run` removes exactly them (and the
plugin's reaper can find them if the bench itself is killed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
BUILD_SCRIPT = REPO / "tests" / "standin" / "build.sh"
ENSURE_DOCKER = REPO / "scripts" / "ensure-docker.sh"
#: Label key prefix of every resource the plugin (and so the bench) creates.
LABEL_PREFIX = "org.pytest-tidb-ha"

log = logging.getLogger("pytest_tidb_ha.bench")


class BenchError(RuntimeError):
    """A bench could not produce its figure; the message says what happened."""


@dataclass(frozen=True)
class Row:
    """One line of the table: what was measured, the figure, its goal and its anchor.

    ``goal`` is the target in words (``<= 2x pytest``, ``p95 <= 100 ms``; empty: none
    set); ``anchor`` is what the figure is compared with, *measured in the same run*
    (pytest's plain items, Debian's sysbench, raw docker), with its value; ``ratio`` is
    figure / anchor as text (``1.62x``); ``verdict`` is :func:`verdict` of the goal
    (``met`` / ``NOT met``; empty without a goal). Build rows with :func:`ratio` and
    :func:`verdict` so every bench writes them alike.
    """

    figure: str
    value: str
    detail: str = ""
    goal: str = ""
    anchor: str = ""
    ratio: str = ""
    verdict: str = ""


def ratio(value: float | None, anchor: float | None, digits: int = 2) -> str:
    """``value / anchor`` as ``1.62x`` (``-`` when either is missing or the anchor is 0)."""
    if value is None or anchor is None or not anchor or value != value or anchor != anchor:
        return "-"
    return f"{value / anchor:.{digits}f}x"


def verdict(met: bool | None) -> str:
    """The goal's verdict: ``met``, ``NOT met``, or ``-`` when it could not be judged."""
    return "-" if met is None else ("met" if met else "NOT met")


@dataclass
class Section:
    """One bench's outcome: its rows for the table and its raw numbers for the JSON."""

    name: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 1), "error": self.error,
                "rows": [asdict(r) for r in self.rows], "data": self.data}


class Budget:
    """The wall-clock budget of the whole bench (10 minutes on a 2-core machine).

    Optional repetitions ask :meth:`allows` with their expected cost, so a slow,
    shared machine still finishes in time with fewer repetitions (the JSON says how
    many ran) instead of overrunning.
    """

    def __init__(self, total: float, clock: Any = time.monotonic) -> None:
        self.total = total
        self._clock = clock
        self.started = clock()

    def elapsed(self) -> float:
        return float(self._clock() - self.started)

    def remaining(self) -> float:
        return self.total - self.elapsed()

    def allows(self, seconds: float, *, reserve: float = 0.0) -> bool:
        """Is there time for *seconds* more while keeping *reserve* for later benches?"""
        return self.remaining() - reserve >= seconds


def median(values: Iterable[float]) -> float:
    vals = list(values)
    return statistics.median(vals) if vals else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def secs(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f} s"


def millis(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value * 1000:.0f} ms"


def machine() -> dict[str, Any]:
    """Where the figures were taken (they mean little without it)."""
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    docker_version = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                              capture_output=True, text=True, timeout=15, check=False)
        docker_version = done.stdout.strip() or None
    load = None
    with contextlib.suppress(OSError):
        load = [round(x, 2) for x in os.getloadavg()]
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "mem_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": docker_version,
        "loadavg_at_start": load,
    }


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path


class CommandTimeout(BenchError):
    """A command outlived its deadline; it was interrupted (then killed). ``pid`` was its id."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


def run_command(cmd: Sequence[str], *, timeout: float, cwd: Path | None = None,
                env: dict[str, str] | None = None,
                grace: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a command with a deadline.

    On expiry the command gets SIGINT first (pytest and the bench scripts clean up their
    containers on KeyboardInterrupt), *grace* seconds later SIGKILL; then
    :class:`CommandTimeout` is raised with its last output lines.
    """
    log.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise CommandTimeout(f"{cmd[0]} {' '.join(cmd[1:3])}... did not finish within "
                             f"{timeout:.0f}s; last output:\n{tail(out + err)}", proc.pid) from None
    except BaseException:  # Ctrl-C of the bench: the child got it too; wait for its clean-up
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        if proc.poll() is None:
            proc.kill()
        raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_docker() -> None:
    """``scripts/ensure-docker.sh``: an engine answers (installs/starts one as root)."""
    done = run_command(["bash", str(ENSURE_DOCKER)], timeout=600)
    if done.returncode != 0:
        raise BenchError(f"no Docker engine: {tail(done.stderr)}")


def standin_image() -> str:
    """Build (or find current) the stand-in image; its reference, as build.sh prints it."""
    done = run_command(["bash", str(BUILD_SCRIPT)], timeout=900)
    ref = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not ref:
        raise BenchError(f"{BUILD_SCRIPT.name} failed (exit {done.returncode}):\n{tail(done.stderr)}")
    return ref


def new_run_id(prefix: str) -> str:
    """A bench-only run id (``bench<prefix><hex>``): every label and name carries it."""
    return f"bench{prefix}{uuid.uuid4().hex[:6]}"


def run_labels(run_id: str, cluster: str, component: str | None = None) -> dict[str, str]:
    """The plugin's label set (docs/contracts.md) for a resource the bench creates."""
    import socket

    labels = {
        f"{LABEL_PREFIX}.plugin": "pytest-tidb-ha",
        f"{LABEL_PREFIX}.run": run_id,
        f"{LABEL_PREFIX}.pid": str(os.getpid()),
        f"{LABEL_PREFIX}.host": socket.gethostname(),
        f"{LABEL_PREFIX}.cluster": cluster,
    }
    if component:
        labels[f"{LABEL_PREFIX}.component"] = component
    return labels


def remove_run(docker: Any, run_id: str) -> list[str]:
    """Remove containers, networks and volumes labelled with *run_id* (only those).

    Returns what was removed, for the log. Networks and volumes are retried briefly
    because an engine answers "in use" while a killed container is still being torn down.
    """
    return _remove_labelled(docker, {"label": [f"{LABEL_PREFIX}.run={run_id}"]}, attempts=10)


def remove_owned_by(docker: Any, pid: int) -> list[str]:
    """Remove what a killed child process (a pytest run we started) left: label ``pid``.

    Only resources whose ``org.pytest-tidb-ha.pid`` is that child's id on this host — never
    anyone else's.
    """
    import socket

    flt = {"label": [f"{LABEL_PREFIX}.pid={pid}", f"{LABEL_PREFIX}.host={socket.gethostname()}"]}
    return _remove_labelled(docker, flt, attempts=1)


def _remove_labelled(docker: Any, flt: dict[str, list[str]], *, attempts: int) -> list[str]:
    """Remove every container, then network, then volume matching the label filter *flt*.

    Containers first (they hold the network and the volumes). Networks and volumes are
    listed and removed up to *attempts* times, pausing between rounds, until none is left.
    Best effort: an engine error skips that resource and goes on. Returns what was removed.
    """
    removed: list[str] = []
    with contextlib.suppress(Exception):
        for c in docker.containers.list(all=True, filters=flt, sparse=True):
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)
                removed.append(f"container {c.id[:12]}")
    for kind, lister in (("network", docker.networks), ("volume", docker.volumes)):
        for attempt in range(attempts):
            try:
                left = lister.list(filters=flt)
            except Exception:  # noqa: BLE001 - engine gone: nothing more we can do
                break
            if not left:
                break
            for obj in left:
                with contextlib.suppress(Exception):
                    obj.remove(force=True) if kind == "volume" else obj.remove()
                    removed.append(f"{kind} {obj.name}")
            if attempt:
                time.sleep(0.3)
    return removed


def leftovers(docker: Any, run_id: str) -> list[str]:
    """Anything still labelled with *run_id* (the bench checks it is nothing)."""
    flt = {"label": [f"{LABEL_PREFIX}.run={run_id}"]}
    out: list[str] = []
    with contextlib.suppress(Exception):
        out += [f"container {c.id[:12]}" for c in docker.containers.list(all=True, filters=flt,
                                                                           sparse=True)]
        out += [f"network {n.name}" for n in docker.networks.list(filters=flt)]
        out += [f"volume {v.name}" for v in docker.volumes.list(filters=flt)]
    return out


def python() -> str:
    """The interpreter running the bench (the project's venv when run as documented)."""
    return sys.executable


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    began = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - began


#: A conftest for a run folder outside the repository: it loads the repository's own
#: conftest (``--standin``, ``--standin-bugs``), as the benches' case runs need.
REPO_CONFTEST = """
import importlib.util
import sys

_spec = importlib.util.spec_from_file_location("tidb_ha_repo_conftest", {path!r})
_mod = importlib.util.module_from_spec(_spec)
sys.modules["tidb_ha_repo_conftest"] = _mod
_spec.loader.exec_module(_mod)
pytest_plugins = ["tidb_ha_repo_conftest"]
"""


def repo_conftest(extra: str = "") -> str:
    """:data:`REPO_CONFTEST` for this checkout, plus *extra* source."""
    return REPO_CONFTEST.format(path=str(REPO / "conftest.py")) + extra
