"""Heal what a dead run left on containers that still exist.

A pytest killed with SIGKILL (or pytest-timeout's thread method, which ``os._exit``s)
cannot run its heals. Its faults stay on the containers -- which may outlive it
(``--ha-keep-cluster``, a pool shared by another process). Every change a fault makes
carries a ledger :class:`~.ledger.Tag` naming the process that made it, so the next
run finds exactly those whose process is dead on this host and undoes them:

* iptables rules (partition, iptables loss/delay) tagged in INPUT/OUTPUT: deleted;
* ledger markers: the netem/htb root qdisc ``7e57:``, the NFQUEUE delayer process, the
  blkio/io throttle, a ``docker pause`` and a ``disk_full`` balloon file are undone, then
  the marker is deleted;
* fault helper containers whose process is dead (or whose target is gone): removed.

Faults of live processes (other sessions, xdist workers) and of other hosts are
never touched.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..procs import process_alive
from .iodelay import CGROUP_ROOT, Throttle, cgroup_dir, write_all
from .ledger import LEDGER_CHAIN, QDISC_HANDLE, RuleLine, Tag, host_id, parse_rules, tag_is_dead
from .netns import NetnsRunner, container_pid, make_runner

log = logging.getLogger("pytest_tidb_ha.faults")

LABEL_PREFIX = "org.pytest-tidb-ha"


@dataclass
class Healed:
    """What :func:`heal_leftovers` undid (for the session header / logs)."""

    rules: list[str] = field(default_factory=list)  # "container: tag"
    undone: list[str] = field(default_factory=list)  # "container: kind tag"
    helpers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rules or self.undone or self.helpers)

    def __str__(self) -> str:
        return (f"{len(self.rules)} rule(s), {len(self.undone)} qdisc/throttle/pause/delayer(s), "
                f"{len(self.helpers)} helper container(s)"
                + (f"; problems: {'; '.join(self.problems)}" if self.problems else ""))


def _labels(c: Any) -> dict[str, str]:
    return dict(((c.attrs.get("Config") or {}).get("Labels")) or {})


def _pid_dead(labels: dict[str, str], alive: Callable[[int], bool]) -> bool:
    if labels.get(f"{LABEL_PREFIX}.hostid", host_id()) != host_id():
        return False
    if labels.get(f"{LABEL_PREFIX}.host", socket.gethostname()) != socket.gethostname():
        return False
    try:
        pid = int(labels.get(f"{LABEL_PREFIX}.pid", ""))
    except ValueError:
        return False
    return pid != os.getpid() and not alive(pid)


def reap_helpers(docker: Any, healed: Healed, alive: Callable[[int], bool] = process_alive) -> None:
    flt = {"label": [f"{LABEL_PREFIX}.plugin=pytest-tidb-ha", f"{LABEL_PREFIX}.component=helper"]}
    for c in docker.containers.list(all=True, filters=flt, ignore_removed=True):
        labels = _labels(c)
        target = labels.get(f"{LABEL_PREFIX}.target")
        gone = False
        if target:
            try:
                t = docker.containers.get(target)
                gone = t.status not in ("running", "paused")
            except Exception:  # noqa: BLE001 - NotFound
                gone = True
        if gone or _pid_dead(labels, alive):
            try:
                c.remove(force=True, v=True)
                healed.helpers.append(c.name)
            except Exception as exc:  # noqa: BLE001
                healed.problems.append(f"helper {c.name}: {exc}")


def undo_script(rules: list[RuleLine]) -> str:
    """Shell that undoes one dead tag's changes inside the netns (pure, unit-tested)."""
    parts: list[str] = []
    for r in rules:
        if r.chain != LEDGER_CHAIN:
            continue
        kind = r.attrs.get("kind", "")
        if r.attrs.get("qdisc") == QDISC_HANDLE and r.attrs.get("dev"):
            dev = r.attrs["dev"]
            parts.append(f"tc qdisc show dev {dev} | grep -q '^qdisc [a-z_]* {QDISC_HANDLE}: root' "
                         f"&& tc qdisc del dev {dev} root")
        if kind == "network_delay" and r.attrs.get("dpid") and r.attrs.get("queue"):
            pid, queue = r.attrs["dpid"], r.attrs["queue"]
            parts.append(f"tr '\\0' ' ' </proc/{pid}/cmdline 2>/dev/null | grep -q ' {queue} ' "
                         f"&& kill {pid}")
    for r in rules:  # data rules first, the ledger markers last
        if r.chain != LEDGER_CHAIN:
            parts.append(" ".join(_q(a) for a in r.delete_argv()))
    for r in rules:  # every copy of a marker (``ledger_add_script`` appends unchecked)
        if r.chain == LEDGER_CHAIN:
            parts.append(f"while {' '.join(_q(a) for a in r.delete_argv())}; do :; done")
    return "; ".join([*(f"{{ {p}; }} 2>/dev/null" for p in parts), "true"])


def _q(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _undo_outside(c: Any, rules: list[RuleLine], healed: Healed) -> None:
    """Undo what lives outside the netns: pause and blkio throttles."""
    for r in rules:
        if r.chain != LEDGER_CHAIN:
            continue
        kind = r.attrs.get("kind")
        if kind == "pause":
            c.reload()
            if c.status == "paused":
                c.unpause()
            healed.undone.append(f"{c.name}: unpause {r.tag}")
        elif kind == "io_delay" and r.attrs.get("device"):
            try:
                pid = container_pid(c)
                version, cg = cgroup_dir(Path(f"/proc/{pid}/cgroup").read_text(), CGROUP_ROOT)
                device = r.attrs["device"].replace(".", ":")
                write_all(Throttle(cg, version, device, 1).heal_writes(), missing_ok=True)
                healed.undone.append(f"{c.name}: io throttle {device} {r.tag}")
            except Exception as exc:  # noqa: BLE001
                healed.problems.append(f"{c.name}: io throttle: {exc}")
        elif kind == "disk_full" and r.attrs.get("file"):
            from .disk import reap_balloon

            try:
                healed.undone.append(f"{c.name}: disk_full {reap_balloon(c, r.attrs['file'])} "
                                     f"{r.tag}")
            except Exception as exc:  # noqa: BLE001
                healed.problems.append(f"{c.name}: balloon: {exc}")
        elif r.attrs.get("qdisc") or r.attrs.get("dpid"):
            healed.undone.append(f"{c.name}: {kind} {r.tag}")


def heal_leftovers(docker: Any, *, only: Iterable[str] | None = None,
                   runner: NetnsRunner | None = None,
                   dead: Callable[[Tag], bool] = tag_is_dead) -> Healed:
    """Heal every fault left by a dead process on our labelled containers; remove dead helpers.

    ``only``: container ids to look at (the ``nemesis`` fixture sweeps just the cluster
    it is about to fault; a session-start sweep looks at every labelled container).
    """
    healed = Healed()
    reap_helpers(docker, healed)
    flt = {"label": [f"{LABEL_PREFIX}.plugin=pytest-tidb-ha"]}
    if only is not None:  # just these: no listing (others' containers come and go meanwhile)
        containers = []
        for cid in set(only):
            try:
                c = docker.containers.get(cid)
            except Exception:  # noqa: BLE001, S112 - NotFound: gone, nothing to heal
                continue
            if c.status in ("running", "paused"):
                containers.append(c)
    else:
        containers = [c for c in docker.containers.list(filters=flt, ignore_removed=True)
                      if _labels(c).get(f"{LABEL_PREFIX}.component") != "helper"]
    if not containers:
        return healed
    own_runner = runner is None
    run = runner or make_runner(docker, run="reaper")
    try:
        for c in containers:
            try:
                listing = run.run(c, f"iptables -w 5 -S; iptables -w 5 -S {LEDGER_CHAIN} 2>/dev/null; true")
            except Exception as exc:  # noqa: BLE001 - one container must not stop the rest
                if type(exc).__name__ != "NotFound" and "is not running" not in str(exc):
                    healed.problems.append(f"{c.name}: {exc}")  # gone meanwhile: nothing to heal
                continue
            by_tag: dict[Tag, list[RuleLine]] = defaultdict(list)
            seen: set[tuple[str, tuple[str, ...]]] = set()
            for rule in parse_rules(listing.output):
                if (rule.chain, rule.spec) in seen:  # the ledger chain is listed twice
                    continue
                seen.add((rule.chain, rule.spec))
                by_tag[rule.tag].append(rule)
            for tag, rules in by_tag.items():
                if not dead(tag):
                    continue
                log.warning("healing leftover fault %s on %s (its process is gone)", tag, c.name)
                _undo_outside(c, rules, healed)
                result = run.run(c, undo_script(rules))
                if result.code != 0:
                    healed.problems.append(f"{c.name}: {result.output.strip()[-300:]}")
                healed.rules += [f"{c.name}: {tag}" for r in rules if r.chain != LEDGER_CHAIN]
    finally:
        if own_runner:
            run.close()
    if healed:
        log.warning("fault reaper: healed %s", healed)
    return healed
