"""The nemesis: runs a case's fault schedules on one thread and always heals.

Jepsen's nemesis in our terms: every :class:`~..scenario.model.FaultSpec` gives
windows (``Schedule.windows(scale)``, seconds after t0 = the nemesis start, which the
runner makes the workload start). One thread, ``tidb-ha-nemesis``, walks all windows
of all specs in time order, so several schedules run at once without a thread each.

For each window: look up the roles the selector needs, resolve the nodes, record
``fault.inject`` (*before* touching anything), apply, record ``fault.applied``; at the
window's end heal and record ``fault.healed`` (planned and actual times, roles after).
An apply that fails is recorded as ``fault.error`` and healed at once (a partial apply
leaves partial changes). Heal runs on every way out: the window end, :meth:`stop`
(fixture teardown, also after failures/timeouts/Ctrl-C), and ``atexit``; what a
killed process leaves is found by :mod:`.reaper` through the ledger tags.

Every planned window has a typed record in :attr:`Nemesis.book`
(:mod:`.outcome`: planned, applied, healed, and why not). :meth:`fault_failures`
turns the windows that were not applied or not healed into the messages that
fail the test -- the runner and the ``nemesis`` fixture call it after
:meth:`stop` -- unless the case allows fault errors.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..events import NEMESIS_START, NEMESIS_STOP, NEMESIS_SUMMARY
from ..redact import redact
from ..scenario.model import FaultSpec
from ..timeline import Timeline
from .api import Roles, RoleSource, component_of, live_roles, params_for_event, record
from .context import FaultContext, UnsupportedFault
from .injectors import Injector, build, unsupported_reason
from .ledger import Tag
from .netns import NetnsRunner, make_runner
from .outcome import FaultBook, WindowRecord, failures
from .resolve import Resolved, ResolveError, resolve_nodes, roles_needed

log = logging.getLogger("pytest_tidb_ha.faults")

THREAD_NAME = "tidb-ha-nemesis"
#: How long a heal waits for a role (PD leader, DDL owner) that is briefly unknown.
ROLES_SETTLE = 5.0
LABEL_RUN = "org.pytest-tidb-ha.run"
_SEQ = itertools.count(1)
_SWEPT: set[str] = set()  # container ids swept for dead runs' faults in this process
_SWEPT_LOCK = threading.Lock()
_PROCESS_RUN = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Window:
    """One planned fault window, seconds after the nemesis start."""

    fault_id: str
    spec_index: int
    index: int
    spec: FaultSpec
    start: float
    end: float


def plan_windows(specs: Sequence[FaultSpec], scale: float) -> list[Window]:
    """Every window of every spec, in start order (pure). Ids: ``f<spec>.<window>``."""
    out = [
        Window(f"f{i}.{j}", i, j, spec, start, end)
        for i, spec in enumerate(specs)
        for j, (start, end) in enumerate(spec.schedule.windows(scale))
    ]
    return sorted(out, key=lambda w: (w.start, w.spec_index, w.index))


@dataclass
class _Active:
    window: Window
    injector: Injector
    resolved: Resolved
    need: frozenset[str]
    applied_at: float | None = None


class Nemesis:
    """Runs ``specs`` against ``cluster`` and writes every step to ``timeline``."""

    def __init__(
        self,
        cluster: Any,
        specs: Sequence[FaultSpec],
        timeline: Timeline,
        scale: float = 1.0,
        *,
        seed: int | None = None,
        roles: RoleSource = live_roles,
        runner: NetnsRunner | None = None,
        helper_image: str | None = None,
        run_id: str | None = None,
        factory: Callable[[str, FaultContext, Resolved, Mapping[str, object]], Injector] = build,
        allow_errors: bool = False,
    ) -> None:
        self.cluster = cluster
        self.timeline = timeline
        self.scale = scale
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self._rng = random.Random(self.seed)
        self._roles = roles
        self._runner = runner
        self._helper_image = helper_image
        self._factory = factory
        labels = getattr(cluster, "labels", None) or {}
        self.run_id = run_id or str(labels.get(LABEL_RUN) or _PROCESS_RUN)
        self._seq = next(_SEQ)
        self.skipped: list[tuple[FaultSpec, str]] = []
        runnable: list[FaultSpec] = []
        for spec in specs:
            reason = unsupported_reason(spec.kind, cluster)
            if reason:
                self.skipped.append((spec, reason))
            else:
                runnable.append(spec)
        self.specs = tuple(runnable)
        # ids (f<spec>.<window>) follow the case's own spec order, skipped specs included
        self.windows = [w for w in plan_windows(specs, scale)
                        if not any(w.spec is s for s, _ in self.skipped)]
        #: every planned window, applied or not (see .outcome); filled from start()
        self.book = FaultBook()
        self.allow_errors = allow_errors  # the case allows fault errors (allowFaultErrors)
        self.stopped_at: float | None = None
        self._all_specs = tuple(specs)
        self.errors: list[str] = []
        self.t0: float | None = None
        self._active: dict[str, _Active] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Nemesis:
        """Start the schedule now (t0 = now on the timeline's clock)."""
        if self._thread is not None:
            raise RuntimeError("nemesis already started")
        self._sweep()  # before t0: the sweep must not eat into the first warm-up
        self.t0 = self.timeline.now()
        self._plan_book(self.t0)
        for spec, reason in self.skipped:
            record(self.timeline, "nemesis.skip", kind=spec.kind, selector=str(spec.selector or ""),
                                 reason=reason)
        record(self.timeline,
            NEMESIS_START, seed=self.seed, scale=self.scale,
            windows=[{"fault_id": w.fault_id, "kind": w.spec.kind, "planned_start": self.t0 + w.start,
                      "planned_end": self.t0 + w.end} for w in self.windows],
        )
        atexit.register(self._atexit)
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def _plan_book(self, t0: float) -> None:
        """One record per window of every spec the case planned (skipped ones too)."""
        skipped = {id(spec): reason for spec, reason in self.skipped}
        for w in plan_windows(self._all_specs, self.scale):
            self.book.add(WindowRecord(
                fault_id=w.fault_id, kind=w.spec.kind, selector=str(w.spec.selector or ""),
                spec_index=w.spec_index, window=w.index, planned_start=round(t0 + w.start, 3),
                planned_end=round(t0 + w.end, 3),
                allow_errors=w.spec.allow_errors,
                skipped=skipped.get(id(w.spec))))

    def fault_failures(self) -> tuple[list[str], list[str]]:
        """``(failures, allowed)``: windows not applied or not healed (after :meth:`stop`).

        Failures fail the test; ``allowed`` are the same problems on faults the case
        lets fail (``allowFaultErrors``), for the notes.
        """
        return failures(self.book, allow_all=self.allow_errors, stopped_at=self.stopped_at)

    def _sweep(self) -> None:
        """Before the first fault on a container in this process, heal dead runs' leftovers."""
        docker = getattr(self.cluster, "docker", None)
        if not self.windows or docker is None or not getattr(self.cluster, "can_control_nodes", True):
            return
        ids = {n.container_id for n in self.cluster.nodes if getattr(n, "container_id", None)}
        with _SWEPT_LOCK:
            todo = ids - _SWEPT
            _SWEPT.update(todo)
        if not todo:
            return
        from .reaper import heal_leftovers

        try:
            healed = heal_leftovers(docker, only=todo)
        except Exception as exc:  # noqa: BLE001 - a failed sweep must not stop the schedule
            log.warning("fault reaper failed: %s", exc)
            return
        if healed:
            record(self.timeline, "nemesis.reaped", healed=str(healed), rules=healed.rules,
                   undone=healed.undone, helpers=healed.helpers)

    def stop(self, timeout: float = 120.0) -> None:
        """Stop the schedule, heal everything still applied, join the thread."""
        if self._stopped:
            return
        if self.t0 is not None and self.stopped_at is None:
            self.stopped_at = round(self.timeline.now(), 3)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("nemesis thread did not stop within %ss; healing from %s", timeout,
                          threading.current_thread().name)
        self.heal_all(reason="stop")
        self._stopped = True
        if self._runner is not None:
            self._runner.close()
        atexit.unregister(self._atexit)
        record(self.timeline, NEMESIS_STOP, errors=list(self.errors),
                             unhealed=sorted(self._active))
        if self.t0 is not None:
            record(self.timeline, NEMESIS_SUMMARY, allow_errors=self.allow_errors,
                   **self.book.summary(stopped_at=self.stopped_at))

    def __enter__(self) -> Nemesis:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _atexit(self) -> None:
        if not self._stopped:
            log.warning("nemesis healing at interpreter exit")
            self._stop.set()
            self.heal_all(reason="atexit")

    @property
    def active(self) -> list[str]:
        """Fault ids applied and not yet healed."""
        with self._lock:
            return sorted(self._active)

    def done(self) -> bool:
        """True when the schedule thread has run every window (or was stopped)."""
        return self._thread is not None and not self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        """Wait until every window ran; False when ``timeout`` expired first."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the schedule thread ---------------------------------------------
    def _main(self) -> None:
        assert self.t0 is not None
        seq = itertools.count()
        queue: list[tuple[float, int, str, Window]] = [
            (self.t0 + w.start, next(seq), "open", w) for w in self.windows
        ]
        heapq.heapify(queue)
        try:
            while queue:
                when, _, action, window = queue[0]
                if self._stop.is_set() and (self.stopped_at is None or action == "close"
                                            or when > self.stopped_at):
                    break  # stopping: a window already due still opens (below), nothing later
                delay = when - self.timeline.now()
                if delay > 0:
                    self._stop.wait(min(delay, 1.0))
                    continue
                heapq.heappop(queue)
                if action == "open":
                    if self._open(window):
                        heapq.heappush(queue, (self.t0 + window.end, next(seq), "close", window))
                else:
                    self._close(window.fault_id, reason="window end")
        except BaseException as exc:  # noqa: BLE001 - record, then heal below
            self.errors.append(f"nemesis thread: {exc!r}")
            log.exception("nemesis thread failed")
        finally:
            self.heal_all(reason="stop" if self._stop.is_set() else "schedule end")

    def _runner_for_cluster(self) -> NetnsRunner:
        if self._runner is None:
            self._runner = make_runner(self.cluster.docker, self._helper_image, run=self.run_id)
        return self._runner

    def _lookup(self, need: frozenset[str]) -> Roles:
        return self._roles(self.cluster, need) if need else Roles()

    def _open(self, w: Window) -> bool:
        """Resolve, record, apply one window. True when a heal is due at its end."""
        assert self.t0 is not None
        spec = w.spec
        planned = {"planned_start": round(self.t0 + w.start, 3),
                   "planned_end": round(self.t0 + w.end, 3)}
        base = {"fault_id": w.fault_id, "kind": spec.kind, **planned}
        try:
            need = roles_needed(spec.selector)
            if spec.kind == "pd_leader_resign":
                need |= {"pd_leader"}
            if spec.kind == "ddl_owner_resign":
                need |= {"ddl_owner"}
            names = [n.name for n in self.cluster.nodes]
            roles = self._lookup(need)
            if spec.selector is None:
                resolved = Resolved((), (), roles.as_event())
            else:
                resolved = resolve_nodes(spec.selector, names, roles, self._rng)
            if "pd_leader" not in need and any(component_of(n) == "pd" for n in resolved.nodes):
                need |= {"pd_leader"}  # record who led PD while a PD node was faulted
                resolved = Resolved(resolved.sources, resolved.targets,
                                    {**resolved.roles, **self._lookup(frozenset({"pd_leader"})).as_event()})
            tag = Tag.mine(f"{self.run_id}", f"{self._seq}-{w.fault_id}")
            runner: NetnsRunner = (self._runner_for_cluster() if self._needs_runner(spec.kind)
                                   else _NoRunner())
            ctx = FaultContext(cluster=self.cluster, runner=runner, tag=tag)
            injector = self._factory(spec.kind, ctx, resolved, spec.params)
        except (ResolveError, UnsupportedFault, Exception) as exc:  # noqa: BLE001
            msg = redact(f"{type(exc).__name__}: {exc}")
            self.errors.append(f"{w.fault_id} {spec.kind}: {msg}")
            record(self.timeline, "fault.error", **base, phase="resolve", error=msg,
                                 selector=str(spec.selector or ""))
            self.book.problem(w.fault_id, "resolve", msg)
            log.warning("fault %s %s not injected: %s", w.fault_id, spec.kind, msg)
            return False
        record(self.timeline,
            "fault.inject", **base, selector=str(spec.selector or ""),
            targets=list(resolved.targets), sources=list(resolved.sources), roles=resolved.roles,
            params=params_for_event(spec.params), window=w.index, tag=str(tag),
            method=getattr(ctx.runner, "method", None),
        )
        self.book.opened(w.fault_id, resolved.nodes)
        active = _Active(w, injector, resolved, need)
        with self._lock:
            self._active[w.fault_id] = active
            t = self.timeline.now()
            try:
                injector.apply()
            except Exception as exc:  # noqa: BLE001 - record, heal what was applied
                msg = redact(f"{type(exc).__name__}: {exc}")
                self.errors.append(f"{w.fault_id} {spec.kind} apply: {msg}")
                record(self.timeline, "fault.error", fault_id=w.fault_id, kind=spec.kind,
                                     phase="apply", error=msg)
                self.book.problem(w.fault_id, "apply", msg)
                log.warning("fault %s %s apply failed: %s", w.fault_id, spec.kind, msg)
                self._close(w.fault_id, reason="apply failed")
                return False
            active.applied_at = self.timeline.now()
            self.book.applied(w.fault_id, round(active.applied_at, 3))
            if spec.kind == "restart":
                self._after_restart(resolved.targets, w.fault_id)
        record(self.timeline, "fault.applied", fault_id=w.fault_id, kind=spec.kind,
                             planned_start=planned["planned_start"], started=round(t, 3),
                             apply_seconds=round(active.applied_at - t, 4),
                             lag=round(active.applied_at - (self.t0 + w.start), 4),
                             detail=_safe_describe(injector))
        log.info("fault %s %s applied on %s", w.fault_id, spec.kind,
                 ", ".join(resolved.nodes) or "the cluster")
        return True

    @staticmethod
    def _needs_runner(kind: str) -> bool:
        return kind in ("network_partition", "network_delay", "network_loss", "pause", "io_delay")

    def _close(self, fault_id: str, *, reason: str) -> bool:
        """Heal one fault; True when healed (or nothing to heal)."""
        assert self.t0 is not None
        with self._lock:
            active = self._active.get(fault_id)
            if active is None:
                return True
            t = self.timeline.now()
            try:
                active.injector.heal()
            except Exception as exc:  # noqa: BLE001 - stays active, retried by stop()
                msg = redact(f"{type(exc).__name__}: {exc}")
                self.errors.append(f"{fault_id} heal: {msg}")
                record(self.timeline, "fault.error", fault_id=fault_id, kind=active.window.spec.kind,
                                     phase="heal", error=msg, reason=reason)
                self.book.problem(fault_id, "heal", msg)
                log.error("fault %s heal failed: %s", fault_id, msg)
                return False
            healed = self.timeline.now()
            del self._active[fault_id]
            if active.applied_at is not None:  # an apply that failed was never applied
                self.book.healed(fault_id, round(healed, 3))
            if active.window.spec.kind == "kill":
                self._after_restart(active.resolved.targets, fault_id)
        roles_after: dict[str, object] = {}
        if active.need and reason != "atexit":
            roles_after = self._roles_after(active.need)
        w = active.window
        record(self.timeline,
            "fault.healed", fault_id=fault_id, kind=w.spec.kind,
            planned_end=round(self.t0 + w.end, 3), started=round(t, 3),
            heal_seconds=round(healed - t, 4), lag=round(healed - (self.t0 + w.end), 4),
            reason=reason, roles_after=roles_after,
        )
        log.info("fault %s %s healed (%s)", fault_id, w.spec.kind, reason)
        return True

    def _after_restart(self, nodes: Sequence[str], cause: str) -> None:
        """Re-apply open network faults: restarted nodes came back without their rules."""
        with self._lock:
            others = [a for f, a in self._active.items()
                      if f != cause and hasattr(a.injector, "refresh")]
        for a in others:
            try:
                a.injector.refresh(list(nodes))  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - recorded; the window stays open
                msg = redact(f"{type(exc).__name__}: {exc}")
                self.errors.append(f"{a.window.fault_id} reapply: {msg}")
                record(self.timeline, "fault.error", fault_id=a.window.fault_id,
                       kind=a.window.spec.kind, phase="reapply", error=msg)
                self.book.problem(a.window.fault_id, "reapply", msg)
                continue
            record(self.timeline, "fault.reapplied", fault_id=a.window.fault_id,
                   kind=a.window.spec.kind, nodes=list(nodes), cause=cause)

    def _roles_after(self, need: frozenset[str], settle: float = ROLES_SETTLE) -> dict[str, object]:
        """Roles right after a heal; polls briefly while an election leaves one unknown."""
        deadline = self.timeline.now() + settle
        while True:
            try:
                roles = self._lookup(need)
            except Exception as exc:  # noqa: BLE001
                return {"error": str(exc)}
            complete = ("pd_leader" not in need or roles.pd_leader) and (
                "ddl_owner" not in need or roles.ddl_owner)
            if complete or self.timeline.now() >= deadline:
                return roles.as_event()
            time.sleep(0.2)

    def heal_all(self, *, reason: str) -> list[str]:
        """Heal every applied fault, newest first; returns the ids that would not heal."""
        with self._lock:
            ids = sorted(self._active, key=lambda f: self._active[f].applied_at or 0.0, reverse=True)
        failed = [f for f in ids if not self._close(f, reason=reason)]
        for f in list(failed):  # one more try: a heal may fail while another is still applied
            if self._close(f, reason=reason):
                failed.remove(f)
        return failed


class _NoRunner:
    method = "api"

    def run(self, container: Any, script: str, *, timeout: float = 0) -> Any:
        raise UnsupportedFault("this fault does not run commands in containers")

    def close(self) -> None:
        return None


def _safe_describe(injector: Injector) -> dict[str, object]:
    try:
        return injector.describe()
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)}
