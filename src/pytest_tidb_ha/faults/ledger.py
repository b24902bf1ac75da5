"""The fault ledger: how an applied fault names itself on the container it changed.

A crashed pytest cannot heal what it applied, so every change a fault makes carries
a *tag* that says who made it, readable from the container alone:

* iptables rules carry the tag as their ``-m comment``;
* every fault that changes a container (partition, delay, loss, io delay, pause)
  also appends one marker rule to the chain :data:`LEDGER_CHAIN` in the container's
  network namespace. The chain is never jumped to, so it filters nothing; it is
  only a place to write down "fault X of process P changed qdisc/throttle Y here".

A tag is ``tidb-ha:<run>:<pid>.<host id>:<fault_id>``. The reaper of a later run
heals a tag whose process is dead on this host; it never touches a live run's faults.
Parsing is pure, so it is unit-tested without Docker.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..procs import process_alive

TAG_PREFIX = "tidb-ha"
LEDGER_CHAIN = "TIDB-HA-LEDGER"
#: Root qdisc handle major of every qdisc we add (``7e57:``): "ours" at a glance.
QDISC_HANDLE = "7e57"
_TAG = re.compile(
    r"^tidb-ha:(?P<run>[A-Za-z0-9_.-]+):(?P<pid>\d+)\.(?P<host>[0-9a-f]{6}):(?P<fault>[A-Za-z0-9_.-]+)$"
)


def host_id(hostname: str | None = None) -> str:
    """A short, stable id of this host (tags must fit in an iptables comment)."""
    return hashlib.sha256((hostname or socket.gethostname()).encode()).hexdigest()[:6]


@dataclass(frozen=True)
class Tag:
    """Who applied a fault: run id, process id, host id and the fault's id."""

    run: str
    pid: int
    host: str
    fault_id: str

    def __str__(self) -> str:
        return f"{TAG_PREFIX}:{self.run}:{self.pid}.{self.host}:{self.fault_id}"

    @classmethod
    def mine(cls, run: str, fault_id: str) -> Tag:
        return cls(run=_safe(run), pid=os.getpid(), host=host_id(), fault_id=_safe(fault_id))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:64] or "x"


def parse_tag(text: str) -> Tag | None:
    """The :class:`Tag` in ``text`` (a comment), or None when it is not ours."""
    m = _TAG.match(text.strip().strip('"'))
    if not m:
        return None
    return Tag(m["run"], int(m["pid"]), m["host"], m["fault"])


@dataclass(frozen=True)
class RuleLine:
    """One ``iptables -S`` line that carries one of our tags."""

    chain: str
    spec: tuple[str, ...]  # the rule without ``-A CHAIN``
    tag: Tag
    attrs: Mapping[str, str] = field(default_factory=dict)  # key=value words after the tag

    def delete_argv(self) -> list[str]:
        return ["iptables", "-w", "5", "-D", self.chain, *self.spec]


def parse_rules(text: str) -> list[RuleLine]:
    """Every rule of ``iptables -S`` output whose comment is one of our tags.

    Marker rules in :data:`LEDGER_CHAIN` have comments ``<tag> key=value ...``.
    """
    out: list[RuleLine] = []
    for line in text.splitlines():
        if not line.startswith("-A "):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if "--comment" not in words:
            continue
        comment = words[words.index("--comment") + 1]
        head, *rest = comment.split()
        tag = parse_tag(head) if head else None
        if tag is None:
            continue
        attrs = dict(w.split("=", 1) for w in rest if "=" in w)
        out.append(RuleLine(chain=words[1], spec=tuple(words[2:]), tag=tag, attrs=attrs))
    return out


def marker_comment(tag: Tag, attrs: Mapping[str, object]) -> str:
    words = [str(tag), *(f"{k}={_safe(str(v))}" for k, v in sorted(attrs.items()))]
    return " ".join(words)


def ledger_add_script(tag: Tag, attrs: Mapping[str, object]) -> str:
    """Shell that records ``tag`` in the ledger chain: one ``iptables`` process when the
    chain exists (the append); the chain is created only when the append fails (once per
    namespace). No check first: that was a second process on every window's apply (the
    tail of pause's apply under load, ``bench/faults.py``); overlapping windows of one run
    on a node each append their own copy, and :func:`ledger_remove_script` takes one."""
    comment = shlex.quote(marker_comment(tag, attrs))
    rule = f"{LEDGER_CHAIN} -m comment --comment {comment} -j RETURN"
    return (
        f"iptables -w 5 -A {rule} 2>/dev/null "
        f"|| {{ iptables -w 5 -N {LEDGER_CHAIN} 2>/dev/null; iptables -w 5 -A {rule}; }}"
    )


def ledger_remove_script(tag: Tag, attrs: Mapping[str, object]) -> str:
    """Shell that removes one copy of ``tag``'s marker (absent is fine): one ``iptables``
    process. One copy per apply, so windows of one run that overlap on a node each take
    their own marker away when they heal; the reaper deletes every copy a dead run left."""
    comment = shlex.quote(marker_comment(tag, attrs))
    return f"iptables -w 5 -D {LEDGER_CHAIN} -m comment --comment {comment} -j RETURN 2>/dev/null; true"


def tag_is_dead(tag: Tag, *, my_host: str | None = None) -> bool:
    """True when the process that applied ``tag`` is gone (only decidable on its host)."""
    if tag.host != (my_host or host_id()):
        return False
    if tag.pid == os.getpid():
        return False
    return not process_alive(tag.pid)
