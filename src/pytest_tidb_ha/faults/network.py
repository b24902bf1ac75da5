"""Network faults: partition (iptables DROP), delay and loss (tc netem), bandwidth (tc htb).

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
isolates/delays the node towards every other node of the cluster. A partition
``shape`` (Jepsen's grudges, :mod:`.grudges`) cuts the selected nodes among
themselves; ``ports`` limits a partition to connections using those TCP ports.

Speed (issue 13): all rules of one namespace go in with **one** ``iptables-restore
--noflush`` (no process per rule), the namespaces of one fault are changed in
parallel, the peers' IPs come from one network inspect, and the NFQUEUE delayer of
a netem-less kernel is started once per node and latency and kept for the run
(``FaultContext.shared``); a window then only inserts and deletes its rules.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from .grudges import Grudge, grudge_for, grudge_sides
from .ledger import LEDGER_CHAIN, QDISC_HANDLE, Tag, ledger_add_script, ledger_remove_script
from .verify import (
    Verification,
    judge_delay,
    judge_loss,
    judge_partition,
    judge_shaped,
    loss_probes,
    port_of,
    run_probe,
)

log = logging.getLogger("pytest_tidb_ha.faults")

DIRECTIONS = ("both", "to", "from")
IPT = "iptables -w 5"
RESTORE = "iptables-restore -w 5 --noflush"
T = TypeVar("T")


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


def _port_matches(ports: Sequence[int], chain: str) -> list[list[str]]:
    """Match a connection using one of ``ports`` at either end (its packets carry the port
    as destination one way and as source the other)."""
    if not ports:
        return [[]]
    plist = ",".join(str(p) for p in ports)
    return [["-p", "tcp", "-m", "multiport", "--dports", plist],
            ["-p", "tcp", "-m", "multiport", "--sports", plist]]


def partition_rules(side: Side, tag: Tag, ports: Sequence[int] = ()) -> list[tuple[str, list[str]]]:
    """(chain, rule spec) pairs for one container."""
    comment = ["-m", "comment", "--comment", str(tag), "-j", "DROP"]
    rules = [("OUTPUT", ["-d", f"{ip}/32", *pm, *comment])
             for ip in side.egress for pm in _port_matches(ports, "OUTPUT")]
    rules += [("INPUT", ["-s", f"{ip}/32", *pm, *comment])
              for ip in side.ingress for pm in _port_matches(ports, "INPUT")]
    return rules


def restore_script(lines: Sequence[str], *, chain: str | None = None) -> str:
    """One ``iptables-restore --noflush`` of ``lines`` (``-I``/``-A``/``-D`` rules of the
    filter table). ``chain``: create this user chain first when it is missing (a restore
    that declared it would flush it)."""
    body = "\n".join(["*filter", *lines, "COMMIT", ""])
    head = f"{IPT} -N {chain} 2>/dev/null; " if chain else ""
    return f"{head}{RESTORE} <<'TIDBHA'\n{body}TIDBHA"


def rule_line(op: str, chain: str, spec: Sequence[str]) -> str:
    """``-I INPUT 1 -s ...`` / ``-D INPUT -s ...`` as an iptables-restore line."""
    where = f"{op} {chain} 1" if op == "-I" else f"{op} {chain}"
    return f"{where} {shlex.join(spec)}"


def partition_apply_script(side: Side, tag: Tag, ports: Sequence[int] = ()) -> str:
    """Insert every DROP rule of one container at the top of its chain, in one restore."""
    rules = partition_rules(side, tag, ports)
    return restore_script([rule_line("-I", c, sp) for c, sp in rules]) if rules else "true"


def tagged_rules_delete_script(tag: Tag) -> str:
    """Delete every rule in INPUT/OUTPUT whose comment is exactly ``tag`` (idempotent):
    ``iptables-save`` filtered by the tag, as ``-D`` lines, in one restore."""
    # iptables-nft quotes every comment, iptables-legacy only those with spaces.
    quoted = shlex.quote(f'--comment "{tag}"')
    bare = shlex.quote(f"--comment {tag} ")
    return (
        f"r=$(iptables-save -t filter | grep -E '^-A (INPUT|OUTPUT) ' "
        f"| grep -F -e {quoted} -e {bare} | sed 's/^-A /-D /'); "
        f"[ -z \"$r\" ] || printf '*filter\\n%s\\nCOMMIT\\n' \"$r\" | {RESTORE}"
    )


def delete_script(lines: Sequence[str], tag: Tag) -> str:
    """Delete the rules we inserted (one restore); if any is gone already (a restarted
    namespace, a second heal) fall back to deleting whatever still carries the tag."""
    if not lines:
        return tagged_rules_delete_script(tag)
    dels = [_as_delete(ln) for ln in lines]
    return f"{{ {restore_script(dels)}\n}} 2>/dev/null || {{ {tagged_rules_delete_script(tag)}; }}"


def _as_delete(line: str) -> str:
    """``-I CHAIN 1 spec`` (as :func:`rule_line` writes it) -> ``-D CHAIN spec``."""
    op, chain, pos, spec = line.split(" ", 3)
    assert op == "-I", line
    assert pos == "1", line
    return f"-D {chain} {spec}"


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


def _root_guard(dev: str, tag: Tag) -> list[str]:
    h = QDISC_HANDLE
    d = shlex.quote(dev)
    mine = shlex.quote(str(tag) + " ")
    return [
        f"if {IPT} -S {LEDGER_CHAIN} 2>/dev/null | grep -qF -- {mine}; then exit 0; fi; ",
        f"if tc qdisc show dev {d} | grep -q '^qdisc [a-z_]* {h}: root'; then "
        f"echo 'another tidb-ha fault owns the root qdisc on {dev}'; exit 4; fi; ",
    ]


def netem_apply_script(dev: str, peers: Sequence[str], netem: Sequence[str], tag: Tag,
                       kind: str) -> str:
    """Root qdisc ``7e57:`` on ``dev`` plus our ledger marker.

    Without peers: netem on all egress. With peers: a 4-band ``prio`` qdisc whose
    default priomap never uses band 4, netem under band 4, and u32 filters sending
    packets for the peers' IPs to band 4 -- everything else leaves undelayed.
    Idempotent: when our ledger marker for ``tag`` exists the qdisc is ours already;
    a ``7e57:`` root of someone else's fault is an error (one tc fault per node at a time).
    All tc commands go through one ``tc -batch``.
    """
    h = QDISC_HANDLE
    net = " ".join(netem)
    if not peers:
        cmds = [f"qdisc replace dev {dev} root handle {h}: netem {net}"]
    else:
        cmds = [f"qdisc replace dev {dev} root handle {h}: prio bands 4 "
                "priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1",
                f"qdisc add dev {dev} parent {h}:4 handle 7e58: netem {net}"]
        cmds += [f"filter add dev {dev} parent {h}: protocol ip prio 1 u32 "
                 f"match ip dst {ip}/32 flowid {h}:4" for ip in peers]
    return "".join(_root_guard(dev, tag)) + _tc_batch(
        cmds, ledger_add_script(tag, marker_attrs(kind, dev)))


def _tc_batch(cmds: Sequence[str], then: str) -> str:
    """One ``tc -batch`` fed by a here-document; ``then`` runs when it succeeded. The ``&&``
    belongs on the command's own line: after the here-document's terminator it would start
    a new command, a shell syntax error."""
    body = "\n".join(cmds)
    return f"tc -batch - <<'TIDBHA' && {{ {then}; }}\n{body}\nTIDBHA\n"


def htb_apply_script(dev: str, peers: Sequence[str], rate_bits: float, tag: Tag) -> str:
    """``bandwidth``: an htb root ``7e57:`` whose class 4 is limited to ``rate``; with peers
    only their packets (u32 on the destination) go to class 4, the rest to the unlimited
    class 1. One ``tc -batch``; the ledger marker as for netem."""
    h = QDISC_HANDLE
    rate = f"{max(8, int(rate_bits))}bit"
    cmds = [f"qdisc replace dev {dev} root handle {h}: htb default {1 if peers else 4}",
            f"class add dev {dev} parent {h}: classid {h}:1 htb rate 10gbit quantum 60000",
            f"class add dev {dev} parent {h}: classid {h}:4 htb rate {rate} ceil {rate} "
            f"quantum 1514"]
    cmds += [f"filter add dev {dev} parent {h}: protocol ip prio 1 u32 "
             f"match ip dst {ip}/32 flowid {h}:4" for ip in peers]
    return "".join(_root_guard(dev, tag)) + _tc_batch(
        cmds, ledger_add_script(tag, marker_attrs("bandwidth", dev)))


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


def in_parallel(fn: Callable[[str], T], nodes: Sequence[str]) -> dict[str, T]:
    """``fn(node)`` for every node at once (each a process in another namespace); the
    first error is raised after all have finished, so what worked is known."""
    if len(nodes) <= 1:
        return {n: fn(n) for n in nodes}
    with ThreadPoolExecutor(min(8, len(nodes))) as pool:
        futures = {n: pool.submit(fn, n) for n in nodes}
    out: dict[str, T] = {}
    first: BaseException | None = None
    for n, f in futures.items():
        try:
            out[n] = f.result()
        except BaseException as exc:  # noqa: BLE001 - raised below, after the others
            first = first or exc
    if first is not None:
        raise first
    return out


class NetworkFault:
    """Base of the network injectors: resolves IPs, runs scripts per container."""

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
            self._forget(node)
        self.apply()

    def _forget(self, node: str) -> None:
        """What this fault put into ``node``'s old namespace is gone with it."""

    def _pair(self) -> tuple[str, str] | None:
        """(from node, to node) of one link the fault must change (for :meth:`verify`)."""
        for side in self.sides():
            for ip in side.egress:
                peer = next((n for n, i in self._ips.items() if i == ip), None)
                if peer is not None:
                    return side.node, peer
        return None


class PartitionFault(NetworkFault):
    """DROP rules in both sides' namespaces; ``shape`` and ``ports`` as documented above."""

    kind = "network_partition"

    def __init__(self, ctx: Any, sources: Sequence[str], targets: Sequence[str],
                 params: Mapping[str, object]) -> None:
        super().__init__(ctx, sources, targets, params)
        self.ports: tuple[int, ...] = tuple(params.get("ports") or ())  # type: ignore[arg-type]
        self.shape = params.get("shape")
        self.grudge: Grudge | None = None
        self._done: dict[str, list[str]] = {}  # node -> restore lines inserted there

    def sides(self) -> list[Side]:
        if self._sides is None and self.shape:
            self._ips = self.ctx.ips()
            nodes = list(self.sources) + [t for t in self.targets if t not in self.sources]
            if self.grudge is None:  # drawn once per window (a refresh keeps the groups)
                self.grudge = grudge_for(str(self.shape), nodes, self.ctx.rng)
            self._sides = grudge_sides(self.grudge, self._ips)
        return super().sides()

    def apply(self) -> None:
        todo: dict[str, list[str]] = {}
        for side in self.sides():
            lines = [rule_line("-I", c, sp) for c, sp in
                     partition_rules(side, self.ctx.tag, self.ports)]
            new = [ln for ln in lines if ln not in self._done.get(side.node, [])]
            if new:
                todo[side.node] = new

        def one(node: str) -> None:
            self.ctx.exec(node, restore_script(todo[node]), "iptables-restore DROP")
            self._done.setdefault(node, []).extend(todo[node])

        in_parallel(one, list(todo))

    def heal(self) -> None:
        nodes = list(dict.fromkeys([s.node for s in self.sides()] + list(self._done)))

        def one(node: str) -> None:
            self.ctx.exec(node, delete_script(self._done.get(node, []), self.ctx.tag),
                          "iptables-restore -D", missing_ok=True)
            self._done.pop(node, None)

        in_parallel(one, nodes)

    def _forget(self, node: str) -> None:
        self._done.pop(node, None)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        if self.ports:
            out["ports"] = list(self.ports)
        if self.grudge is not None:
            out["shape"] = self.shape
            out["grudge"] = {n: sorted(g) for n, g in self.grudge.items()}
        return out

    def verify(self, budget: float) -> Verification | None:
        """A connection attempt across the cut (on a cut port) must time out."""
        pair = self._pair()
        if pair is None:
            return None
        src, dst = pair
        port = self.ports[0] if self.ports else port_of(dst)
        results = run_probe(self.ctx, src, [(self._ips[dst], port)], 2, budget)
        return judge_partition(results, f"{src} -> {dst}:{port}")


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
    """Insert ``specs`` at the top of ``chain`` in one restore."""
    return restore_script([rule_line("-I", chain, sp) for sp in specs]) if specs else "true"


def delayer_start_script(python: str, queue: int, latency_ms: float, jitter_ms: float, tag: Tag) -> str:
    """Start the NFQUEUE delayer in the background; print its pid, then wait for ``ready``."""
    from .delayer import SOURCE

    out = f"/tmp/tidb-ha-delayer-{queue}.out"  # noqa: S108 - a file inside the node's container
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


class Delayer:
    """One NFQUEUE delayer in one node's namespace, kept for the run (closed at the
    nemesis' stop). It carries its own ledger marker, so a reaper stops it when the run
    died; with ``--queue-bypass`` an idle delayer delays nothing."""

    def __init__(self, ctx: Any, node: str, queue: int, latency_ms: float,
                 jitter_ms: float) -> None:
        self.node = node
        self.queue = queue
        self._exec = ctx.exec
        self.tag = Tag.mine(ctx.tag.run, f"delayer-{queue}")
        python = getattr(ctx.runner, "python", "python3")
        out = ctx.exec(node, delayer_start_script(python, queue, latency_ms, jitter_ms, self.tag),
                       "start NFQUEUE delayer").output
        pids = [ln[4:] for ln in out.splitlines() if ln.startswith("pid=")]
        self.pid = int(pids[-1]) if pids else 0
        self.marker = {"kind": "network_delay", "backend": "iptables", "queue": queue,
                       "dpid": self.pid}
        ctx.exec(node, ledger_add_script(self.tag, self.marker), "ledger")

    def close(self) -> None:
        self._exec(self.node, delayer_stop_script(self.pid, self.queue) + "; "
                   + ledger_remove_script(self.tag, self.marker), "stop NFQUEUE delayer",
                   missing_ok=True)

    def __repr__(self) -> str:
        return f"Delayer({self.node}, queue={self.queue}, pid={self.pid})"


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
        self._rules: dict[str, list[str]] = {}  # node -> iptables lines inserted there
        self._own: dict[str, Any] = {}  # delayers of a fault used without a nemesis

    def _egress(self) -> list[tuple[str, tuple[str, ...]]]:
        if not self.sources:  # whole node: all egress, no filter
            self._ips = self.ctx.ips()
            return [(n, ()) for n in self.targets]
        return [(s.node, s.egress) for s in self.sides() if s.egress]

    def apply(self) -> None:
        egress = dict(self._egress())
        in_parallel(lambda node: self._apply_node(node, egress[node]), list(egress))

    def _apply_node(self, node: str, peers: tuple[str, ...]) -> None:
        dev = self.ctx.iface(node, self._ips[node])
        assert dev is not None
        if self.backends.get(node) != "iptables" and not NetemFault.netem_missing:
            script = netem_apply_script(dev, peers, self.netem, self.ctx.tag, self.kind)
            result = self.ctx.exec(node, script, f"tc netem {' '.join(self.netem)}", check=False)
            if result.code == 0:
                self.backends[node] = "netem"
                return
            if NETEM_MISSING in result.output:
                NetemFault.netem_missing = True  # same kernel for every container: ask once
            else:
                self.ctx.exec(node, netem_heal_script(dev, self.ctx.tag, self.kind),
                              "tc qdisc del", missing_ok=True)
                raise_exec(result, f"tc netem {' '.join(self.netem)}", node)
        self.backends[node] = "iptables"
        self._apply_iptables(node, peers, dev)

    def _delayer(self, node: str) -> Delayer:
        """The run's delayer for this node's namespace and this latency (started once)."""
        from .delayer import queue_number

        latency = seconds_of(self.params["latency"]) * 1000
        jitter = seconds_of(self.params.get("jitter") or 0) * 1000
        c = self.ctx.container(node)
        netns = self.ctx.runner.namespace_key(c)  # a restart gives a new namespace
        key = f"delayer:{c.id}:{netns}:{latency:g}:{jitter:g}"
        shared = self.ctx.shared if self.ctx.shared is not None else self._own
        found = shared.get(key)
        if found is None:
            queue = queue_number(f"{self.ctx.tag.run}:{key}")
            found = shared[key] = Delayer(self.ctx, node, queue, latency, jitter)
        assert isinstance(found, Delayer)
        return found

    def prepare(self) -> int:
        """Before t0 (:mod:`.warmup`): start the run's delayer of every node this fault may
        delay, so no window pays a delayer's start. Returns how many it started."""
        if self.kind != "network_delay" or not NetemFault.netem_missing:
            return 0
        nodes = [n for n, _ in self._egress() if n in self._ips]
        in_parallel(self._delayer, nodes)
        return len(nodes)

    def _apply_iptables(self, node: str, peers: tuple[str, ...], dev: str) -> None:
        tag = self.ctx.tag
        queue = self._delayer(node).queue if self.kind == "network_delay" else None
        specs = shaping_rule_specs(self.kind, self.params, peers, dev, tag, queue)
        lines = [rule_line("-I", "OUTPUT", sp) for sp in specs]
        new = [ln for ln in lines if ln not in self._rules.get(node, [])]
        if new:
            self.ctx.exec(node, restore_script(new), f"iptables {self.kind}")
            self._rules.setdefault(node, []).extend(new)

    def _forget(self, node: str) -> None:
        self._rules.pop(node, None)
        if self.backends.get(node) == "iptables":
            self.backends.pop(node, None)
        # a delayer bound in the node's old namespace keeps that namespace alive: stop it
        cid = self.ctx.container(node).id
        for shared in (self.ctx.shared, self._own):
            for key, helper in list((shared or {}).items()):
                if key.startswith(f"delayer:{cid}:") and isinstance(helper, Delayer):
                    shared.pop(key, None)
                    helper.close()

    def heal(self) -> None:
        egress = [node for node, _ in self._egress()]
        in_parallel(self._heal_node, list(dict.fromkeys(egress + list(self._rules))))
        for delayer in list(self._own.values()):  # a nemesis keeps its own for the run
            delayer.close()
        self._own.clear()

    def _heal_node(self, node: str) -> None:
        if self.backends.get(node) == "iptables" or node in self._rules:
            self.ctx.exec(node, delete_script(self._rules.get(node, []), self.ctx.tag),
                          "iptables -D", missing_ok=True)
            self._rules.pop(node, None)
            return
        dev = self.ctx.iface(node, self._ips[node], missing_ok=True)
        if dev is None:
            return  # container gone or stopped: its qdisc went with its namespace
        self.ctx.exec(node, netem_heal_script(dev, self.ctx.tag, self.kind),
                      "tc qdisc del", missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "backends": dict(self.backends), "netem": self.netem}

    def _probe_pair(self) -> tuple[str, str] | None:
        if self.sources:
            return self._pair()
        node = self.targets[0] if self.targets else None
        peer = next((n for n in self._ips if n != node), None)
        return (node, peer) if node and peer else None

    def verify(self, budget: float) -> Verification | None:
        """Delay: handshake round trips; loss: lost handshakes, towards one affected peer."""
        pair = self._probe_pair()
        if pair is None:
            return None
        src, dst = pair
        target = [(self._ips[dst], port_of(dst))]
        label = f"{src} -> {dst}"
        if self.kind == "network_delay":
            latency = seconds_of(self.params["latency"])
            jitter = seconds_of(self.params.get("jitter") or 0)
            wait = max(budget, 2 * latency + 0.5)
            return judge_delay(run_probe(self.ctx, src, target, 3, wait), latency, jitter, label)
        percent = float(str(self.params["loss"]).rstrip("%"))
        n = loss_probes(percent)
        return judge_loss(run_probe(self.ctx, src, target, n, budget), percent, label)


class BandwidthFault(NetworkFault):
    """``bandwidth``: egress towards the peers limited to ``rate`` (tc htb)."""

    kind = "bandwidth"

    def __init__(self, ctx: Any, sources: Sequence[str], targets: Sequence[str],
                 params: Mapping[str, object]) -> None:
        super().__init__(ctx, sources, targets, params)
        self.rate = float(params["rate"])  # type: ignore[arg-type]
        self._devs: dict[str, str] = {}

    def _egress(self) -> list[tuple[str, tuple[str, ...]]]:
        if not self.sources:
            self._ips = self.ctx.ips()
            return [(n, ()) for n in self.targets]
        return [(s.node, s.egress) for s in self.sides() if s.egress]

    def apply(self) -> None:
        egress = dict(self._egress())

        def one(node: str) -> None:
            dev = self.ctx.iface(node, self._ips[node])
            assert dev is not None
            self.ctx.exec(node, htb_apply_script(dev, egress[node], self.rate, self.ctx.tag),
                          "tc htb")
            self._devs[node] = dev

        in_parallel(one, list(egress))

    def heal(self) -> None:
        def one(node: str) -> None:
            dev = self._devs.get(node) or self.ctx.iface(node, self._ips[node], missing_ok=True)
            if dev is not None:
                self.ctx.exec(node, netem_heal_script(dev, self.ctx.tag, self.kind),
                              "tc qdisc del", missing_ok=True)
            self._devs.pop(node, None)

        in_parallel(one, [n for n, _ in self._egress()])

    def _forget(self, node: str) -> None:
        self._devs.pop(node, None)

    def verify(self, budget: float) -> Verification | None:
        node = next(iter(self._devs), None)
        if node is None:
            return None
        out = self.ctx.exec(node, f"tc class show dev {shlex.quote(self._devs[node])}",
                            "tc class show").output
        return judge_shaped(out, self.rate, node)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "rate_bits": self.rate, "devs": dict(self._devs)}


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
    "BandwidthFault",
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
