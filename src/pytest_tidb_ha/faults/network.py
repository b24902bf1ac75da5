"""Network faults: partition (iptables DROP), delay and loss (tc netem).

Every change happens inside the affected containers' network namespaces (see
:mod:`.netns`) and is keyed to peer container IPs on the cluster network, so only
the selected pairs are affected. Script builders are pure (unit-tested); the
injectors run them.

Direction, for a ``SOURCE_to_TARGET`` selector (Chaos Mesh's meaning):

* ``to``   — traffic from sources to targets is dropped/delayed/lossy;
* ``from`` — traffic from targets to sources;
* ``both`` — both ways (default).

Both sides enforce a partition (each drops what it would send or receive across the
cut), so a node that restarts its network stack on one side stays cut. Delay/loss act
on egress only: ``to`` on the sources, ``from`` on the targets, ``both`` on each side
(a round trip then takes twice the latency). A single-sided selector (``tikv-1``)
isolates/delays the node towards every other node of the cluster.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .ledger import LEDGER_CHAIN, QDISC_HANDLE, Tag, ledger_add_script, ledger_remove_script

DIRECTIONS = ("both", "to", "from")
IPT = "iptables -w 5"


@dataclass(frozen=True)
class Side:
    """What one container must do: drop/delay traffic to ``egress`` / from ``ingress`` IPs."""

    node: str
    egress: tuple[str, ...]
    ingress: tuple[str, ...]


def plan_sides(
    sources: Sequence[str],
    targets: Sequence[str],
    ips: Mapping[str, str],
    direction: str = "both",
) -> list[Side]:
    """Per affected container, the peer IPs whose outgoing/incoming traffic is cut.

    ``sources`` empty means "isolate the targets from every other node in ``ips``".
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if not sources:
        sources = list(targets)
        targets = [n for n in ips if n not in sources]
        direction = "both"
    s_ips = tuple(ips[n] for n in sources)
    t_ips = tuple(ips[n] for n in targets)
    out_src = direction in ("both", "to")  # S -> T cut
    out_tgt = direction in ("both", "from")  # T -> S cut
    sides: list[Side] = []
    for n in sources:
        sides.append(Side(n, egress=t_ips if out_src else (), ingress=t_ips if out_tgt else ()))
    for n in targets:
        sides.append(Side(n, egress=s_ips if out_tgt else (), ingress=s_ips if out_src else ()))
    return [s for s in sides if s.egress or s.ingress]


def partition_rules(side: Side, tag: Tag) -> list[tuple[str, list[str]]]:
    """(chain, rule spec) pairs for one container."""
    comment = ["-m", "comment", "--comment", str(tag), "-j", "DROP"]
    rules = [("OUTPUT", ["-d", f"{ip}/32", *comment]) for ip in side.egress]
    rules += [("INPUT", ["-s", f"{ip}/32", *comment]) for ip in side.ingress]
    return rules


def partition_apply_script(side: Side, tag: Tag) -> str:
    """Insert each DROP rule at the top of its chain unless it is there already."""
    parts = []
    for chain, spec in partition_rules(side, tag):
        s = shlex.join(spec)
        parts.append(f"{{ {IPT} -C {chain} {s} 2>/dev/null || {IPT} -I {chain} 1 {s}; }}")
    return " && ".join(parts) or "true"


def tagged_rules_delete_script(tag: Tag) -> str:
    """Delete every rule in INPUT/OUTPUT whose comment is exactly ``tag`` (idempotent)."""
    # iptables-nft quotes every comment, iptables-legacy only those with spaces.
    quoted = shlex.quote(f'--comment "{tag}"')
    bare = shlex.quote(f"--comment {tag} ")
    return (
        f"for c in INPUT OUTPUT; do {IPT} -S $c | grep -F -e {quoted} -e {bare} | sed 's/^-A /-D /' "
        f"| while read -r rule; do eval {IPT} $rule; done; done; true"
    )


def seconds_of(value: object) -> float:
    """A Duration, a number of seconds or a Go-style text (``100ms``) in seconds."""
    if hasattr(value, "seconds"):
        return float(value.seconds)
    if isinstance(value, (int, float)):
        return float(value)
    from ..scenario.durations import parse_duration

    return parse_duration(value).seconds


def _ms(value: object) -> str:
    return f"{max(0.0, seconds_of(value)) * 1000:g}ms"


def netem_args(kind: str, params: Mapping[str, object]) -> list[str]:
    """``netem`` arguments for a delay or loss fault."""
    if kind == "network_delay":
        args = ["delay", _ms(params["latency"])]
        jitter = params.get("jitter")
        if jitter is not None and seconds_of(jitter) > 0:
            args.append(_ms(jitter))
        return args
    if kind == "network_loss":
        loss = params["loss"]
        pct = float(str(loss).rstrip("%"))
        return ["loss", f"{pct:g}%"]
    raise ValueError(f"no netem arguments for {kind}")


def iface_for_ip(ip_addr_output: str, ip: str) -> str | None:
    """The interface holding ``ip`` in ``ip -o -4 addr show`` output (pure)."""
    for line in ip_addr_output.splitlines():
        words = line.split()
        if "inet" in words:
            i = words.index("inet")
            if i + 1 < len(words) and words[i + 1].split("/")[0] == ip:
                return words[1].split("@")[0]
    return None


def netem_apply_script(dev: str, peers: Sequence[str], netem: Sequence[str], tag: Tag,
                       kind: str) -> str:
    """Root qdisc ``7e57:`` on ``dev`` plus our ledger marker.

    Without peers: netem on all egress. With peers: a 4-band ``prio`` qdisc whose
    default priomap never uses band 4, netem under band 4, and u32 filters sending
    packets for the peers' IPs to band 4 -- everything else leaves undelayed.
    Idempotent: when our ledger marker for ``tag`` exists the qdisc is ours already;
    a ``7e57:`` root of someone else's fault is an error (one tc fault per node at a time).
    """
    h = QDISC_HANDLE
    d = shlex.quote(dev)
    mine = shlex.quote(str(tag) + " ")
    lines = [
        f"if {IPT} -S {LEDGER_CHAIN} 2>/dev/null | grep -qF -- {mine}; then exit 0; fi; ",
        f"if tc qdisc show dev {d} | grep -q '^qdisc [a-z_]* {h}: root'; then "
        f"echo 'another tidb-ha fault owns the root qdisc on {dev}'; exit 4; fi; ",
    ]
    net = shlex.join(list(netem))
    if not peers:
        lines.append(f"tc qdisc replace dev {d} root handle {h}: netem {net} && ")
    else:
        lines.append(
            f"tc qdisc replace dev {d} root handle {h}: prio bands 4 "
            "priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 && "
            f"tc qdisc add dev {d} parent {h}:4 handle 7e58: netem {net} && "
        )
        for ip in peers:
            lines.append(
                f"tc filter add dev {d} parent {h}: protocol ip prio 1 u32 "
                f"match ip dst {ip}/32 flowid {h}:4 && "
            )
    lines.append("{ " + ledger_add_script(tag, marker_attrs(kind, dev)) + "; }")
    return "".join(lines)


def marker_attrs(kind: str, dev: str) -> dict[str, object]:
    return {"kind": kind, "qdisc": QDISC_HANDLE, "dev": dev}


def netem_heal_script(dev: str, tag: Tag, kind: str) -> str:
    """Remove our root qdisc (when present) and the ledger marker; idempotent."""
    h = QDISC_HANDLE
    d = shlex.quote(dev)
    return (
        f"if tc qdisc show dev {d} | grep -q '^qdisc [a-z_]* {h}: root'; then "
        f"tc qdisc del dev {d} root || exit 5; fi; "
        + ledger_remove_script(tag, marker_attrs(kind, dev))
    )


class NetworkFault:
    """Base of the three network injectors: resolves IPs, runs scripts per container."""

    kind = "network"

    def __init__(self, ctx: Any, sources: Sequence[str], targets: Sequence[str],
                 params: Mapping[str, object]) -> None:
        self.ctx = ctx
        self.sources = tuple(sources)
        self.targets = tuple(targets)
        self.params = dict(params)
        self.direction = str(self.params.get("direction", "both"))
        self._sides: list[Side] | None = None
        self._ips: dict[str, str] = {}

    def sides(self) -> list[Side]:
        if self._sides is None:
            self._ips = self.ctx.ips()
            self._sides = plan_sides(self.sources, self.targets, self._ips, self.direction)
        return self._sides

    def describe(self) -> dict[str, object]:
        return {"method": self.ctx.runner.method,
                "ips": {n: self._ips.get(n) for n in (*self.sources, *self.targets)}}

    def apply(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        raise NotImplementedError

    def refresh(self, restarted: Sequence[str]) -> None:
        """Apply again after ``restarted`` nodes came back with a fresh network namespace.

        A restarted container loses its rules and qdiscs (and may get a new IP), while
        the window is still open. Heal stays correct: it deletes by tag, not by IP.
        """
        self._sides = None
        for node in restarted:
            self.ctx.forget(node)
        self.apply()


class PartitionFault(NetworkFault):
    kind = "network_partition"

    def apply(self) -> None:
        for side in self.sides():
            self.ctx.exec(side.node, partition_apply_script(side, self.ctx.tag), "iptables DROP")

    def heal(self) -> None:
        for side in self.sides():
            self.ctx.exec(side.node, tagged_rules_delete_script(self.ctx.tag), "iptables -D",
                          missing_ok=True)


NETEM_MISSING = "qdisc kind is unknown"


def shaping_rule_specs(kind: str, params: Mapping[str, object], peers: Sequence[str], dev: str,
                       tag: Tag, queue: int | None = None) -> list[list[str]]:
    """OUTPUT rule specs of the iptables backend (kernels without ``sch_netem``).

    Loss: ``-m statistic --mode random --probability p -j DROP``; delay:
    ``-j NFQUEUE --queue-num q --queue-bypass`` towards :mod:`.delayer`. Without peers
    the rule matches everything leaving the cluster interface ``dev``.
    """
    matches = [["-d", f"{ip}/32"] for ip in peers] or [["-o", dev]]
    comment = ["-m", "comment", "--comment", str(tag)]
    if kind == "network_loss":
        p = float(str(params["loss"]).rstrip("%")) / 100
        action = ["-m", "statistic", "--mode", "random", "--probability", f"{p:.4f}", *comment,
                  "-j", "DROP"]
    else:
        assert queue is not None
        action = [*comment, "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    return [[*m, *action] for m in matches]


def insert_rules_script(chain: str, specs: Sequence[Sequence[str]]) -> str:
    parts = [f"{{ {IPT} -C {chain} {shlex.join(sp)} 2>/dev/null || {IPT} -I {chain} 1 {shlex.join(sp)}; }}"
             for sp in specs]
    return " && ".join(parts) or "true"


def delayer_start_script(python: str, queue: int, latency_ms: float, jitter_ms: float, tag: Tag) -> str:
    """Start the NFQUEUE delayer in the background; print its pid, then wait for ``ready``."""
    from .delayer import SOURCE

    out = f"/tmp/tidb-ha-delayer-{queue}.out"
    return (
        f"{shlex.quote(python)} -c {shlex.quote(SOURCE)} {queue} {latency_ms:g} {jitter_ms:g} "
        f"{shlex.quote(str(tag))} >{out} 2>&1 </dev/null & pid=$!; "
        f"i=0; while [ $i -lt 100 ]; do grep -q ready {out} 2>/dev/null && {{ echo pid=$pid; exit 0; }}; "
        f"kill -0 $pid 2>/dev/null || {{ cat {out}; exit 6; }}; sleep 0.05; i=$((i+1)); done; "
        f"kill $pid; cat {out}; exit 7"
    )


def delayer_stop_script(pid: int | None, queue: int) -> str:
    """Stop our delayer (by pid, only when its command line names our queue)."""
    if not pid:
        return "true"
    return (
        f"if tr '\\0' ' ' </proc/{pid}/cmdline 2>/dev/null | grep -q 'ready' && "
        f"tr '\\0' ' ' </proc/{pid}/cmdline | grep -q ' {queue} '; then kill {pid}; fi; "
        f"rm -f /tmp/tidb-ha-delayer-{queue}.out; true"
    )


class NetemFault(NetworkFault):
    """``network_delay`` / ``network_loss``: tc netem, or iptables where netem is missing.

    The backend is decided per node at apply: ``tc qdisc ... netem`` first; a kernel
    without ``sch_netem`` answers "Specified qdisc kind is unknown", and then loss
    becomes an iptables ``statistic`` DROP and delay an NFQUEUE through
    :mod:`.delayer`. Both act on egress towards the same peers; ``describe()`` says
    which backend ran.
    """

    #: Set once a kernel said it has no ``sch_netem`` (one kernel per Docker engine).
    netem_missing = False

    def __init__(self, kind: str, ctx: Any, sources: Sequence[str], targets: Sequence[str],
                 params: Mapping[str, object]) -> None:
        super().__init__(ctx, sources, targets, params)
        self.kind = kind
        self.netem = netem_args(kind, self.params)
        self.backends: dict[str, str] = {}
        self._delayers: dict[str, int] = {}

    def _egress(self) -> list[tuple[str, tuple[str, ...]]]:
        if not self.sources:  # whole node: all egress, no filter
            self._ips = self.ctx.ips()
            return [(n, ()) for n in self.targets]
        return [(s.node, s.egress) for s in self.sides() if s.egress]

    def apply(self) -> None:
        for node, peers in self._egress():
            dev = self.ctx.iface(node, self._ips[node])
            assert dev is not None
            if self.backends.get(node) != "iptables" and not NetemFault.netem_missing:
                script = netem_apply_script(dev, peers, self.netem, self.ctx.tag, self.kind)
                result = self.ctx.exec(node, script, f"tc netem {' '.join(self.netem)}", check=False)
                if result.code == 0:
                    self.backends[node] = "netem"
                    continue
                if NETEM_MISSING in result.output:
                    NetemFault.netem_missing = True  # same kernel for every container: ask once
                else:
                    self.ctx.exec(node, netem_heal_script(dev, self.ctx.tag, self.kind),
                                  "tc qdisc del", missing_ok=True)
                    raise_exec(result, f"tc netem {' '.join(self.netem)}", node)
            self.backends[node] = "iptables"
            self._apply_iptables(node, peers, dev)

    def _apply_iptables(self, node: str, peers: tuple[str, ...], dev: str) -> None:
        from .delayer import queue_number

        tag = self.ctx.tag
        queue: int | None = None
        if self.kind == "network_delay":
            queue = queue_number(f"{tag}:{node}")
            if node not in self._delayers:
                latency = seconds_of(self.params["latency"]) * 1000
                jitter = seconds_of(self.params.get("jitter") or 0) * 1000
                python = getattr(self.ctx.runner, "python", "python3")
                out = self.ctx.exec(node, delayer_start_script(python, queue, latency, jitter, tag),
                                    "start NFQUEUE delayer").output
                pids = [ln[4:] for ln in out.splitlines() if ln.startswith("pid=")]
                self._delayers[node] = int(pids[-1]) if pids else 0
        marker: dict[str, object] = {"kind": self.kind, "backend": "iptables", "dev": dev}
        if queue is not None:
            marker.update(queue=queue, dpid=self._delayers.get(node, 0))
        specs = shaping_rule_specs(self.kind, self.params, peers, dev, tag, queue)
        script = ledger_add_script(tag, marker) + " && " + insert_rules_script("OUTPUT", specs)
        self.ctx.exec(node, script, f"iptables {self.kind}")

    def refresh(self, restarted: Sequence[str]) -> None:
        for node in restarted:
            pid = self._delayers.pop(node, None)
            if pid:  # its namespace is gone with the old container process; so must it
                from .delayer import queue_number

                self.ctx.exec(node, delayer_stop_script(pid, queue_number(f"{self.ctx.tag}:{node}")),
                              "stop stale delayer", missing_ok=True)
        super().refresh(restarted)

    def heal(self) -> None:
        from .delayer import queue_number

        for node, _ in self._egress():
            if self.backends.get(node) == "iptables":
                queue = queue_number(f"{self.ctx.tag}:{node}")
                script = (tagged_rules_delete_script(self.ctx.tag) + "; "
                          + delayer_stop_script(self._delayers.get(node), queue) + "; "
                          + ledger_tag_remove_script(self.ctx.tag))
                self.ctx.exec(node, script, "iptables -D", missing_ok=True)
                self._delayers.pop(node, None)
                continue
            dev = self.ctx.iface(node, self._ips[node], missing_ok=True)
            if dev is None:
                continue  # container gone or stopped: its qdisc went with its namespace
            self.ctx.exec(node, netem_heal_script(dev, self.ctx.tag, self.kind),
                          "tc qdisc del", missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "backends": dict(self.backends), "netem": self.netem}


def ledger_tag_remove_script(tag: Tag) -> str:
    """Remove every ledger marker of ``tag`` whatever its attributes (idempotent)."""
    quoted = shlex.quote(f'--comment "{tag} ')
    return (
        f"{IPT} -S {LEDGER_CHAIN} 2>/dev/null | grep -F -- {quoted} | sed 's/^-A /-D /' "
        f"| while read -r rule; do eval {IPT} $rule; done; true"
    )


def raise_exec(result: Any, what: str, node: str) -> None:
    from .netns import FaultExecError

    raise FaultExecError(f"{what} in {node} failed (exit {result.code}): {result.output.strip()[-2000:]}")


__all__ = [
    "DIRECTIONS",
    "NetemFault",
    "PartitionFault",
    "Side",
    "iface_for_ip",
    "netem_apply_script",
    "netem_args",
    "netem_heal_script",
    "partition_apply_script",
    "plan_sides",
    "tagged_rules_delete_script",
]
