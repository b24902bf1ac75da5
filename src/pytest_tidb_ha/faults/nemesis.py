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

Every random choice -- ``(random)``/``(N%)`` targets, random schedules, the kind of
a ``faultTypes`` window, a partition shape's grouping -- comes from the run's seed
(``--ha-seed``) through a generator of its own per window (:func:`window_rng`), so the
same seed gives the same choices, also when other windows are left out (``--ha-shrink``).

A fault with ``when:`` waits for its trigger: the nemesis subscribes to the Timeline
and reads the jobs' ``job.state`` events (:mod:`.triggers`); the first observation
that matches opens its schedule (``fault.trigger``), counted from that observation.

After each apply the injector ``verify()`` checks the fault from inside the cluster
(:mod:`.verify`, event ``fault.verified``); a contradicting measurement counts the
window as not applied.

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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..cluster.protocol import ClusterLike
from ..events import (
    FAULT_TRIGGER,
    FAULT_VERIFIED,
    NEMESIS_START,
    NEMESIS_STOP,
    NEMESIS_SUMMARY,
)
from ..redact import redact
from ..scenario.model import FaultSpec
from ..timeline import Event, Timeline
from .api import Roles, RoleSource, component_of, live_roles, params_for_event, record
from .context import FaultContext, UnsupportedFault
from .injectors import Injector, build, kill_mode_of, unsupported_reason
from .ledger import Tag
from .netns import NetnsRunner, make_runner
from .outcome import FaultBook, WindowRecord, failures
from .resolve import Resolved, ResolveError, resolve_nodes, roles_needed
from .triggers import Sighting, matches
from .verify import Verification, probe_budget
from .warmup import NETNS_KINDS, kinds_of, prime_inits, warm_up

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
    """One planned fault window, seconds after the nemesis start -- or after the
    trigger, for a ``when:`` fault."""

    fault_id: str
    spec_index: int
    index: int
    spec: FaultSpec
    start: float
    end: float
    kind: str = ""  # this window's fault kind (one of faultTypes for a mix)

    @property
    def triggered(self) -> bool:
        return self.spec.trigger is not None


def window_rng(seed: int, purpose: str) -> random.Random:
    """The generator of one random choice, from the run's seed and what it is for
    (``f0.3`` targets, ``kind:f0.3``, ``schedule:0``): independent of every other
    choice, so leaving a window out changes nothing about the rest."""
    return random.Random(f"{seed}:{purpose}")  # noqa: S311 - a seeded schedule, not a secret


def plan_windows(specs: Sequence[FaultSpec], scale: float, seed: int = 0,
                 only: Collection[str] | None = None) -> list[Window]:
    """Every window of every spec, in start order (pure). Ids: ``f<spec>.<window>``.

    Random schedules and ``faultTypes`` mixes draw from ``seed``; ``only`` keeps just
    those fault ids (a shrinking run replays a subset with the same draws).
    """
    out: list[Window] = []
    for i, spec in enumerate(specs):
        rng = window_rng(seed, f"schedule:{i}") if spec.schedule.is_random else None
        for j, (start, end) in enumerate(spec.schedule.windows(scale, rng)):
            fid = f"f{i}.{j}"
            kind = (window_rng(seed, f"kind:{fid}").choice(spec.kinds) if spec.kinds
                    else spec.kind)
            if only is None or fid in only:
                out.append(Window(fid, i, j, spec, start, end, kind))
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
        cluster: ClusterLike,
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
        only: Collection[str] | None = None,
        verify: bool = True,
    ) -> None:
        self.cluster = cluster
        self.timeline = timeline
        self.scale = scale
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self._roles = roles
        self._runner = runner
        self._helper_image = helper_image
        self._factory = factory
        labels = cluster.labels
        self.run_id = run_id or str(labels.get(LABEL_RUN) or _PROCESS_RUN)
        self._seq = next(_SEQ)
        self.skipped: list[tuple[FaultSpec, str]] = []
        runnable: list[FaultSpec] = []
        for spec in specs:
            reason = next((r for r in (unsupported_reason(k, cluster)
                                       for k in spec.kinds or (spec.kind,)) if r), None)
            if reason:
                self.skipped.append((spec, reason))
            else:
                runnable.append(spec)
        self.specs = tuple(runnable)
        self.only = frozenset(only) if only is not None else None
        self._verify = verify
        self._silent: bool | None = None  # see _silent_kill
        # ids (f<spec>.<window>) follow the case's own spec order, skipped specs included
        self._planned = plan_windows(specs, scale, self.seed, self.only)
        self.windows = [w for w in self._planned if not any(w.spec is s for s, _ in self.skipped)]
        #: spec index -> its trigger, until it fires (faults with ``when:``)
        self._pending = {w.spec_index: w.spec.trigger for w in self.windows
                         if w.spec.trigger is not None}
        self._fired: list[tuple[int, Sighting]] = []
        self._last_seen: dict[int, Sighting] = {}
        self._wake = threading.Event()
        self._trigger_lock = threading.Lock()  # never held while a fault applies
        self._times: dict[str, tuple[float, float]] = {}  # fault id -> planned (start, end)
        #: every planned window, applied or not (see .outcome); filled from start()
        self.book = FaultBook()
        self.allow_errors = allow_errors  # the case allows fault errors (allowFaultErrors)
        self.stopped_at: float | None = None
        self._all_specs = tuple(specs)
        self.errors: list[str] = []
        #: triggers that never fired, in words (after :meth:`stop`)
        self.missed: list[str] = []
        self.t0: float | None = None
        self._active: dict[str, _Active] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        #: what injectors keep across windows (long-lived helpers), closed at stop
        self._shared: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Nemesis:
        """Start the schedule now (t0 = now on the timeline's clock)."""
        if self._thread is not None:
            raise RuntimeError("nemesis already started")
        self._sweep()  # before t0: the sweep must not eat into the first warm-up
        self._warm_up()  # before t0 too: windows then only apply
        self.t0 = self.timeline.now()
        self._plan_book(self.t0)
        for w in self.windows:
            if not w.triggered:
                self._times[w.fault_id] = (self.t0 + w.start, self.t0 + w.end)
        if self._pending:
            self.timeline.subscribe(self._on_event)
        for spec, reason in self.skipped:
            record(self.timeline, "nemesis.skip", kind=spec.kind, selector=str(spec.selector or ""),
                                 reason=reason)
        record(self.timeline,
            NEMESIS_START, seed=self.seed, scale=self.scale,
            windows=[{"fault_id": w.fault_id, "kind": w.kind,
                      **({"trigger": str(w.spec.trigger), "offset_start": w.start,
                          "offset_end": w.end} if w.triggered else
                         {"planned_start": self.t0 + w.start, "planned_end": self.t0 + w.end})}
                     for w in self.windows],
            **({"only": sorted(self.only)} if self.only is not None else {}),
        )
        atexit.register(self._atexit)
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def _plan_book(self, t0: float) -> None:
        """One record per window of every spec the case planned (skipped ones too)."""
        skipped = {id(spec): reason for spec, reason in self.skipped}
        for w in self._planned:
            base = 0.0 if w.triggered else t0
            self.book.add(WindowRecord(
                fault_id=w.fault_id, kind=w.kind, selector=str(w.spec.selector or ""),
                spec_index=w.spec_index, window=w.index, planned_start=round(base + w.start, 3),
                planned_end=round(base + w.end, 3),
                allow_errors=w.spec.allow_errors,
                skipped=skipped.get(id(w.spec)),
                trigger=str(w.spec.trigger) if w.triggered else None))

    def fault_failures(self) -> tuple[list[str], list[str]]:
        """``(failures, allowed)``: windows not applied or not healed (after :meth:`stop`).

        Failures fail the test; ``allowed`` are the same problems on faults the case
        lets fail (``allowFaultErrors``), for the notes.
        """
        return failures(self.book, allow_all=self.allow_errors, stopped_at=self.stopped_at)

    def _sweep(self) -> None:
        """Before the first fault on a container in this process, heal dead runs' leftovers."""
        docker = self.cluster.docker
        if not self.windows or docker is None or not self.cluster.can_control_nodes:
            return
        ids = {n.container_id for n in self.cluster.nodes if n.container_id}
        with _SWEPT_LOCK:
            todo = ids - _SWEPT
            _SWEPT.update(todo)
        if not todo:
            return
        from .reaper import heal_leftovers

        try:
            # the run's own runner when windows need one: its shells then start here
            runner = (self._runner_for_cluster()
                      if any(self._needs_runner(w.kind) for w in self.windows) else None)
            healed = heal_leftovers(docker, only=todo, runner=runner)
        except Exception as exc:  # noqa: BLE001 - a failed sweep must not stop the schedule
            log.warning("fault reaper failed: %s", exc)
            return
        if healed:
            record(self.timeline, "nemesis.reaped", healed=str(healed), rules=healed.rules,
                   undone=healed.undone, helpers=healed.helpers)

    def _warm_up(self) -> None:
        """Start the run's shells and helpers now (:mod:`.warmup`), not in the windows."""
        if not self.windows or not self.cluster.can_control_nodes:
            return
        specs = list({id(w.spec): w.spec for w in self.windows}.values())
        kinds = kinds_of(specs)
        if not any(self._needs_runner(k) for k in kinds) and "kill" not in kinds:
            return
        tag = Tag.mine(self.run_id, f"{self._seq}-warmup")
        done: dict[str, object] = {}
        try:
            if any(self._needs_runner(k) for k in kinds):
                done.update(warm_up(self.cluster, self._runner_for_cluster(), self._shared,
                                    specs, tag))
            if "kill" in kinds:
                ctx = FaultContext(cluster=self.cluster, runner=_NoRunner(), tag=tag,
                                   shared=self._shared)
                done.update(prime_inits(self.cluster, ctx.container, self._shared, specs))
        except Exception as exc:  # noqa: BLE001 - each window starts what it lacks
            log.warning("fault warm-up failed: %s", exc)
            done["error"] = redact(f"{type(exc).__name__}: {exc}")
        record(self.timeline, "nemesis.warmup", **done)

    def stop(self, timeout: float = 120.0) -> None:
        """Stop the schedule, heal everything still applied, join the thread."""
        if self._stopped:
            return
        if self.t0 is not None and self.stopped_at is None:
            self.stopped_at = round(self.timeline.now(), 3)
        self._stop.set()
        self._wake.set()
        self.timeline.unsubscribe(self._on_event)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("nemesis thread did not stop within %ss; healing from %s", timeout,
                          threading.current_thread().name)
        self.heal_all(reason="stop")
        self._missed_triggers()
        for helper in list(self._shared.values()):  # long-lived helpers of the run
            close = getattr(helper, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - recorded; the reaper has the ledger
                    self.errors.append(f"closing {helper!r}: {exc}")
        self._shared.clear()
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
            (self._times[w.fault_id][0], next(seq), "open", w) for w in self.windows
            if not w.triggered
        ]
        heapq.heapify(queue)
        try:
            while True:
                for w in self._take_fired():
                    heapq.heappush(queue, (self._times[w.fault_id][0], next(seq), "open", w))
                if not queue:
                    if self._stop.is_set() or not self._pending:
                        break
                    self._sleep(1.0)  # waiting for a trigger
                    continue
                when, _, action, window = queue[0]
                if self._stop.is_set() and (self.stopped_at is None or action == "close"
                                            or when > self.stopped_at):
                    break  # stopping: a window already due still opens (below), nothing later
                delay = when - self.timeline.now()
                if delay > 0:
                    self._sleep(min(delay, 1.0))
                    continue
                heapq.heappop(queue)
                if action == "open":
                    if self._open(window):
                        heapq.heappush(queue, (self._times[window.fault_id][1], next(seq),
                                               "close", window))
                else:
                    self._close(window.fault_id, reason="window end")
        except BaseException as exc:
            self.errors.append(f"nemesis thread: {exc!r}")
            log.exception("nemesis thread failed")
        finally:
            self.heal_all(reason="stop" if self._stop.is_set() else "schedule end")

    def _sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` pass, a trigger fires or :meth:`stop` is called."""
        self._wake.wait(seconds)
        self._wake.clear()

    # -- job-state triggers ----------------------------------------------------------
    def _on_event(self, ev: Event) -> None:
        """Timeline listener (the watcher's thread): match job observations, nothing else."""
        seen = Sighting.from_event(ev.kind, ev.t, ev.data)
        if seen is None:
            return
        with self._trigger_lock:
            if seen.job_seq is not None:
                self._last_seen[seen.job_seq] = seen
            for index, trigger in list(self._pending.items()):
                if trigger is not None and matches(trigger, seen):
                    del self._pending[index]
                    self._fired.append((index, seen))
        if self._fired:
            self._wake.set()

    def _take_fired(self) -> list[Window]:
        """Windows of the triggers that fired since the last call, planned from their
        observation (records ``fault.trigger``)."""
        with self._trigger_lock:
            fired, self._fired = self._fired, []
        out: list[Window] = []
        for index, seen in fired:
            windows = [w for w in self.windows if w.spec_index == index]
            for w in windows:
                self._times[w.fault_id] = (seen.t + w.start, seen.t + w.end)
            self.book.fired([w.fault_id for w in windows], round(seen.t, 3))
            spec = windows[0].spec
            record(self.timeline, FAULT_TRIGGER, fired=True, spec_index=index,
                   trigger=str(spec.trigger), selector=str(spec.selector or ""),
                   fault_ids=[w.fault_id for w in windows], observation=seen.as_event(),
                   lag=round(self.timeline.now() - seen.t, 3))
            log.info("fault %d (%s) triggered by %s", index, spec.trigger, seen.describe())
            out += windows
        return out

    def _missed_triggers(self) -> None:
        """At stop: every trigger that never fired is a problem of each of its windows."""
        with self._trigger_lock:
            pending, last = dict(self._pending), dict(self._last_seen)
            self._pending.clear()
        for index, trigger in sorted(pending.items()):
            assert trigger is not None
            seen = last.get(trigger.job)
            story = (f"job {trigger.job} was last seen {seen.describe()}" if seen is not None
                     else f"job {trigger.job} was never seen (the case ran "
                          f"{len(last)} job(s) the watcher observed)")
            msg = f"its trigger (when: {trigger}) never fired: {story}"
            ids = [w.fault_id for w in self.windows if w.spec_index == index]
            for fid in ids:
                self.book.problem(fid, "trigger", msg)
            self.missed.append(f"fault {index + 1} ({', '.join(ids)}): {msg}")
            record(self.timeline, FAULT_TRIGGER, fired=False, spec_index=index,
                   trigger=str(trigger), fault_ids=ids, reason=msg)
            log.warning("fault %d: %s", index, msg)

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
        kind = w.kind
        start, end = self._times[w.fault_id]
        planned = {"planned_start": round(start, 3), "planned_end": round(end, 3)}
        base = {"fault_id": w.fault_id, "kind": kind, **planned}
        rng = window_rng(self.seed, w.fault_id)
        try:
            need = roles_needed(spec.selector)
            if kind == "pd_leader_resign":
                need |= {"pd_leader"}
            if kind == "ddl_owner_resign":
                need |= {"ddl_owner"}
            names = [n.name for n in self.cluster.nodes]
            roles = self._lookup(need)
            if spec.selector is None:
                resolved = Resolved((), (), roles.as_event())
            else:
                resolved = resolve_nodes(spec.selector, names, roles, rng)
            if "pd_leader" not in need and any(component_of(n) == "pd" for n in resolved.nodes):
                need |= {"pd_leader"}  # record who led PD while a PD node was faulted
                resolved = Resolved(resolved.sources, resolved.targets,
                                    {**resolved.roles, **self._lookup(frozenset({"pd_leader"})).as_event()})
            tag = Tag.mine(f"{self.run_id}", f"{self._seq}-{w.fault_id}")
            runner: NetnsRunner = (self._runner_for_cluster() if self._needs_runner(kind)
                                   else _NoRunner())
            ctx = FaultContext(cluster=self.cluster, runner=runner, tag=tag, rng=rng,
                               shared=self._shared)
            injector = self._factory(kind, ctx, resolved, spec.params)
        except (ResolveError, UnsupportedFault, Exception) as exc:  # noqa: BLE001
            msg = redact(f"{type(exc).__name__}: {exc}")
            self.errors.append(f"{w.fault_id} {kind}: {msg}")
            record(self.timeline, "fault.error", **base, phase="resolve", error=msg,
                                 selector=str(spec.selector or ""))
            self.book.problem(w.fault_id, "resolve", msg)
            log.warning("fault %s %s not injected: %s", w.fault_id, kind, msg)
            return False
        extra: dict[str, object] = {}
        if w.triggered:
            extra["trigger"] = str(spec.trigger)
        if spec.kinds:
            extra["mix"] = list(spec.kinds)
        record(self.timeline,
            "fault.inject", **base, selector=str(spec.selector or ""),
            targets=list(resolved.targets), sources=list(resolved.sources), roles=resolved.roles,
            params=params_for_event(spec.params), window=w.index, tag=str(tag),
            method=getattr(ctx.runner, "method", None), seed=self.seed, **extra,
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
                self.errors.append(f"{w.fault_id} {kind} apply: {msg}")
                record(self.timeline, "fault.error", fault_id=w.fault_id, kind=kind,
                                     phase="apply", error=msg)
                self.book.problem(w.fault_id, "apply", msg)
                log.warning("fault %s %s apply failed: %s", w.fault_id, kind, msg)
                self._close(w.fault_id, reason="apply failed")
                return False
            active.applied_at = self.timeline.now()
            self.book.applied(w.fault_id, round(active.applied_at, 3))
            if kind == "restart":
                self._after_restart(resolved.targets, w.fault_id)
        record(self.timeline, "fault.applied", fault_id=w.fault_id, kind=kind,
                             planned_start=planned["planned_start"], started=round(t, 3),
                             apply_seconds=round(active.applied_at - t, 4),
                             lag=round(active.applied_at - start, 4),
                             detail=_safe_describe(injector))
        log.info("fault %s %s applied on %s", w.fault_id, kind,
                 ", ".join(resolved.nodes) or "the cluster")
        if self._verify:
            self._verify_window(w, injector, end - start)
        return True

    def _verify_window(self, w: Window, injector: Injector, length: float) -> None:
        """Measure the applied fault from inside the cluster (``fault.verified``)."""
        check = getattr(injector, "verify", None)
        if check is None:
            return
        t = self.timeline.now()
        try:
            v: Verification | None = check(probe_budget(length))
        except Exception as exc:  # noqa: BLE001 - could not measure: recorded, not a verdict
            v = Verification(None, "error", redact(f"could not verify: {type(exc).__name__}: "
                                                   f"{exc}"))
        if v is None:
            return
        record(self.timeline, FAULT_VERIFIED, fault_id=w.fault_id, kind=w.kind,
               verify_seconds=round(self.timeline.now() - t, 4), **v.as_event())
        if v.ok is not None:
            self.book.verify(w.fault_id, v.ok, v.detail)
        (log.info if v.ok is not False else log.warning)(
            "fault %s %s verified=%s: %s", w.fault_id, w.kind, v.ok, v.detail)

    def _needs_runner(self, kind: str) -> bool:
        return kind in NETNS_KINDS or (kind == "kill" and self._silent_kill())

    def _silent_kill(self) -> bool:
        """The cluster's nodes run in silent kill mode: a kill then changes iptables in
        the node's namespace (faults/silence.py). Read once from a node's container (every
        node of a cluster is started in the same mode)."""
        if self._silent is None:
            self._silent = False
            if self.cluster.can_control_nodes and self.cluster.nodes:
                try:
                    c = self.cluster.container(self.cluster.nodes[0].name)
                    self._silent = kill_mode_of(c) == "silent"
                except Exception as exc:  # noqa: BLE001 - the kill window decides per node
                    log.debug("kill mode unknown: %s", exc)
        return self._silent

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
                record(self.timeline, "fault.error", fault_id=fault_id, kind=active.window.kind,
                                     phase="heal", error=msg, reason=reason)
                self.book.problem(fault_id, "heal", msg)
                log.error("fault %s heal failed: %s", fault_id, msg)
                return False
            healed = self.timeline.now()
            del self._active[fault_id]
            if active.applied_at is not None:  # an apply that failed was never applied
                self.book.healed(fault_id, round(healed, 3))
            if active.window.kind == "kill":
                # only a node whose container started afresh lost its rules: a silent or
                # process kill keeps the namespace (applying again would double them)
                restarted = getattr(active.injector, "restarted", active.resolved.targets)
                if restarted:
                    self._after_restart(restarted, fault_id)
        roles_after: dict[str, object] = {}
        if active.need and reason != "atexit":
            roles_after = self._roles_after(active.need)
        w = active.window
        planned_end = self._times.get(fault_id, (0.0, self.t0 + w.end))[1]
        record(self.timeline,
            "fault.healed", fault_id=fault_id, kind=w.kind,
            planned_end=round(planned_end, 3), started=round(t, 3),
            heal_seconds=round(healed - t, 4), lag=round(healed - planned_end, 4),
            reason=reason, roles_after=roles_after,
        )
        log.info("fault %s %s healed (%s)", fault_id, w.kind, reason)
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
                       kind=a.window.kind, phase="reapply", error=msg)
                self.book.problem(a.window.fault_id, "reapply", msg)
                continue
            record(self.timeline, "fault.reapplied", fault_id=a.window.fault_id,
                   kind=a.window.kind, nodes=list(nodes), cause=cause)

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
    cheap_namespace_key = False

    def run(self, container: Any, script: str, *, timeout: float = 0) -> Any:
        raise UnsupportedFault("this fault does not run commands in containers")

    def namespace_key(self, container: Any) -> str:
        return str(getattr(container, "id", container))

    def close(self) -> None:
        return None


def _safe_describe(injector: Injector) -> dict[str, object]:
    try:
        return injector.describe()
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)}
