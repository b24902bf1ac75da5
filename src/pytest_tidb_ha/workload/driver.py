"""The two workload drivers' common seam, and which one runs (pure selection).

* ``sysbench`` — Debian's ``sysbench`` binary (:mod:`.driver_sysbench`), the tool
  QA's cases name: its per-second report lines become the metrics.
* ``python`` — our own client (:mod:`.driver_python`): the fallback where the
  binary is absent or cannot express the target.

``--ha-workload-driver`` (``auto`` by default) picks; :func:`choose` says which
driver ``auto`` means here and why, so the run can record it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from .metrics import Sample, Totals
from .statements import SUBTYPES
from .sysbench_cli import config_text
from .target import Target

DriverName = Literal["sysbench", "python"]
DRIVER_CHOICES = ("auto", "sysbench", "python")


class Reporter(Protocol):
    """What a driver tells the workload (:class:`~.sysbench.Sysbench`)."""

    def now(self) -> float:
        """The timeline clock."""
        ...

    def on_error(self, code: int | None, message: str) -> bool:
        """Count an error of the current second; True when ``ignore_errors`` lets it go on."""
        ...

    def on_fatal(self, code: int | None, message: str) -> None:
        """The workload stopped on this error (recorded once; ``stop()`` raises it)."""
        ...

    def on_sample(self, sample: Sample) -> None:
        """One closed interval of metrics (the sysbench driver's report lines)."""
        ...

    def on_restart(self, reason: str, restarts: int, output: str) -> None:
        """The client crashed where it would have reconnected and runs again (recorded)."""
        ...


class Driver(Protocol):
    """A running workload client: start it, stop it, read its totals."""

    #: what the run records as the driver (``"sysbench 1.0.20"``, ``"python"``)
    label: str
    #: times the client was started again after crashing (the sysbench binary's
    #: reconnect path); the Python client reconnects by itself: always 0
    restarts: int

    def start(self) -> None: ...

    def stop(self, timeout: float) -> list[str]:
        """Stop within ``timeout``; names of what did not stop (threads, pids)."""
        ...

    def totals(self, now: float) -> Totals: ...


@dataclass(frozen=True)
class Choice:
    driver: DriverName
    reason: str


class DriverUnavailable(ValueError):
    """``--ha-workload-driver sysbench`` where the binary cannot run the workload."""


def _problem(subtype: str, target: Target | None, which: Callable[[str], str | None],
             *, with_target: bool = True) -> str | None:
    """Why the binary cannot run this workload; None when it can."""
    if which("sysbench") is None:
        return "sysbench is not on PATH (apt-get install sysbench)"
    if subtype not in SUBTYPES:
        return f"subtype {subtype!r} is not one of sysbench's scripts"
    if not with_target:
        return None
    if target is None:
        return "no endpoints to give sysbench (the workload only has a connection factory)"
    if target.host_port_lists() is None:
        return ("sysbench pairs every --mysql-host with every --mysql-port, which cannot "
                f"name exactly the endpoints {target!r}")
    try:
        config_text(target.password)
    except ValueError as exc:
        return str(exc)
    return None


def _check_name(requested: str) -> None:
    if requested not in DRIVER_CHOICES:
        raise ValueError(f"workload driver {requested!r}: expected one of "
                         f"{', '.join(DRIVER_CHOICES)}")


def precheck(requested: str, subtype: str,
             which: Callable[[str], str | None] = shutil.which) -> None:
    """Before a cluster starts: fail a forced ``sysbench`` that cannot run at all."""
    _check_name(requested)
    if requested == "sysbench":
        problem = _problem(subtype, None, which, with_target=False)
        if problem is not None:
            raise DriverUnavailable(f"--ha-workload-driver sysbench: {problem}")


def choose(requested: str, subtype: str, target: Target | None,
           which: Callable[[str], str | None] = shutil.which) -> Choice:
    """The driver for ``requested`` (``auto``/``sysbench``/``python``), with the reason.

    ``auto`` takes the binary when it is on PATH, the subtype is one of its
    scripts and its host/port lists can name exactly the target's endpoints.
    """
    _check_name(requested)
    if requested == "python":
        return Choice("python", "asked for (--ha-workload-driver python)")
    problem = _problem(subtype, target, which)
    if problem is None:
        return Choice("sysbench", "sysbench is on PATH" if requested == "auto"
                      else "asked for (--ha-workload-driver sysbench)")
    if requested == "sysbench":
        raise DriverUnavailable(f"--ha-workload-driver sysbench: {problem}")
    return Choice("python", problem)
