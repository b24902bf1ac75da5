"""Proof that an applied fault took effect, measured from inside the cluster.

An injector that returned without error has only said *it ran its commands*;
Chaos Mesh users learned that a ``to`` partition behaved like ``both`` only by
watching their traffic (chaos-mesh #4477). So after each apply the nemesis asks
the injector to ``verify()`` and records the measured effect (``fault.verified``):

* partition -- a TCP connection attempt across the cut, from inside the sender's
  network namespace, must time out (a reply, even a refusal, crossed the cut);
* delay -- TCP handshakes towards a delayed peer must take about the latency;
* loss -- of many handshakes towards a lossy peer some must be lost;
* bandwidth -- the shaping class with its rate is in the node's qdisc;
* pause -- Docker says ``paused`` and a request to the node's status port gets no answer;
* kill -- the container is stopped and its process gone (the supervised kill modes: the
  container runs and no server process is in it; silent mode: and a peer's new connection
  to the node goes unanswered);
* restart -- the container started again after the window opened;
* io_delay -- an fsync on the node's data disk, from a process in the node's cgroup,
  takes about the latency;
* disk_full -- the node's data volume has no more than ``free`` bytes left.

``ok`` is True (measured), False (the measurement contradicts the fault: the window
counts as not applied, faults.outcome) or None (nothing could be measured: the reason
is recorded, the window keeps its applied status). The judgements are pure functions
(unit-tested); the probes are small programs run in a namespace through the runner.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..cluster.specs import PD_CLIENT_PORT, TIDB_PORT, TIDB_STATUS_PORT, TIKV_PORT, TIKV_STATUS_PORT

#: The port a probe aims at on each component (the port its peers use).
PROBE_PORTS: Mapping[str, int] = {"pd": PD_CLIENT_PORT, "tikv": TIKV_PORT, "tidb": TIDB_PORT}
#: A port that answers HTTP on each component (pause: does a request get an answer?).
STATUS_PORTS: Mapping[str, int] = {"pd": PD_CLIENT_PORT, "tikv": TIKV_STATUS_PORT,
                                   "tidb": TIDB_STATUS_PORT}
#: A lossy path is "not lossy" only when no loss in this many tries is this unlikely.
LOSS_FALSE_NEGATIVE = 1e-3
MAX_LOSS_PROBES = 200


@dataclass(frozen=True)
class Verification:
    """What was measured, and whether it shows the fault (None: could not tell)."""

    ok: bool | None
    method: str
    detail: str
    measured: Mapping[str, Any] = field(default_factory=dict)

    def as_event(self) -> dict[str, object]:
        return {"ok": self.ok, "method": self.method, "detail": self.detail,
                "measured": dict(self.measured)}


def probe_budget(window_seconds: float) -> float:
    """Seconds a probe may wait for an answer: a quarter of the window, 0.2..1 s.

    An intact path answers a handshake in about a millisecond on a Docker network, so
    even 0.2 s tells a cut from a working link; the window must stay open while it runs.
    """
    return min(1.0, max(0.2, window_seconds / 4))


# -- the probe program (runs in a network namespace: host python or the helper's) -----------
PROBE = r"""
import json, socket, sys, time
from concurrent.futures import ThreadPoolExecutor
targets, n, timeout, send = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def one(ip, port):
    s = socket.socket(); s.settimeout(timeout); t = time.perf_counter()
    try:
        s.connect((ip, port))
    except socket.timeout:
        return ["timeout", None]
    except ConnectionRefusedError:
        return ["refused", time.perf_counter() - t]
    except OSError as e:
        return ["error:" + str(e.errno), None]
    rtt = time.perf_counter() - t
    if send:
        try:
            s.sendall(send.encode()); s.settimeout(timeout)
            got = s.recv(1)
            return ["answered" if got else "closed", rtt]
        except socket.timeout:
            return ["stalled", rtt]
        except OSError:
            return ["closed", rtt]
        finally:
            s.close()
    s.close()
    return ["ok", rtt]
jobs = [(ip, port) for ip, port in targets for _ in range(n)]
with ThreadPoolExecutor(min(50, max(1, len(jobs)))) as pool:
    res = list(pool.map(lambda a: one(*a), jobs))
out = {}
for (ip, port), r in zip(jobs, res):
    out.setdefault(f"{ip}:{port}", []).append(r)
print(json.dumps(out))
"""


def probe_script(python: str, targets: Sequence[tuple[str, int]], n: int, timeout: float,
                 send: str = "") -> str:
    """Shell running :data:`PROBE` (n connects per target, concurrent)."""
    return (f"{shlex.quote(python)} -c {shlex.quote(PROBE)} "
            f"{shlex.quote(json.dumps([list(t) for t in targets]))} {n} {timeout:g} "
            f"{shlex.quote(send)}")


def parse_probe(output: str) -> dict[str, list[tuple[str, float | None]]]:
    """The probe's JSON (last line) as ``{ip:port: [(outcome, rtt), ...]}``."""
    line = output.strip().splitlines()[-1] if output.strip() else "{}"
    raw = json.loads(line)
    return {k: [(str(o), rtt) for o, rtt in v] for k, v in raw.items()}


def _outcomes(results: Mapping[str, Sequence[tuple[str, float | None]]]) -> list[str]:
    return [o for v in results.values() for o, _ in v]


# -- judgements (pure) ---------------------------------------------------------------
def judge_partition(results: Mapping[str, Sequence[tuple[str, float | None]]],
                    pair: str) -> Verification:
    """Every attempt across the cut must time out; a connect or a refusal crossed it."""
    outcomes = _outcomes(results)
    measured = {"pair": pair, "outcomes": outcomes}
    if not outcomes:
        return Verification(None, "tcp connect", f"{pair}: no attempt was made", measured)
    crossed = [o for o in outcomes if o in ("ok", "refused")]
    if crossed:
        return Verification(False, "tcp connect", f"{pair}: {len(crossed)} of {len(outcomes)} "
                                                  f"connection attempts crossed the cut "
                                                  f"({crossed[0]})", measured)
    if all(o == "timeout" for o in outcomes):
        return Verification(True, "tcp connect", f"{pair}: {len(outcomes)} connection "
                                                 f"attempt(s) timed out across the cut", measured)
    return Verification(None, "tcp connect", f"{pair}: inconclusive ({', '.join(outcomes)})",
                        measured)


def judge_delay(results: Mapping[str, Sequence[tuple[str, float | None]]], latency: float,
                jitter: float, pair: str) -> Verification:
    """The median handshake (connect or refusal: a round trip either way) takes at least
    80 % of ``latency - jitter`` -- one direction of the round trip is delayed."""
    rtts = sorted(rtt for v in results.values() for o, rtt in v
                  if o in ("ok", "refused") and rtt is not None)
    expected = max(0.0, latency - jitter)
    if not rtts:
        return Verification(None, "tcp handshake rtt", f"{pair}: no handshake completed",
                            {"pair": pair, "outcomes": _outcomes(results)})
    median = rtts[len(rtts) // 2]
    measured = {"pair": pair, "rtt_ms": round(median * 1000, 2), "n": len(rtts),
                "expected_ms": round(expected * 1000, 2)}
    ok = median >= 0.8 * expected
    return Verification(ok, "tcp handshake rtt",
                        f"{pair}: handshake median {median * 1000:.1f} ms "
                        f"{'>=' if ok else '<'} 80% of {expected * 1000:.0f} ms", measured)


def loss_probes(percent: float) -> int:
    """Handshakes needed so that a path losing ``percent`` loses none with probability
    below :data:`LOSS_FALSE_NEGATIVE` (capped at :data:`MAX_LOSS_PROBES`)."""
    p = min(0.99, max(0.001, percent / 100))
    return max(20, min(MAX_LOSS_PROBES, math.ceil(math.log(LOSS_FALSE_NEGATIVE) / math.log(1 - p))))


def judge_loss(results: Mapping[str, Sequence[tuple[str, float | None]]], percent: float,
               pair: str) -> Verification:
    """Some handshakes must be lost (timeouts); none lost is a contradiction only when
    it was unlikely (< :data:`LOSS_FALSE_NEGATIVE`) for a path losing ``percent``."""
    outcomes = _outcomes(results)
    lost = sum(1 for o in outcomes if o == "timeout")
    n = len(outcomes)
    measured = {"pair": pair, "lost": lost, "n": n, "loss_pct": round(100 * lost / n, 1) if n
                else None, "expected_pct": percent}
    if n == 0:
        return Verification(None, "tcp handshakes", f"{pair}: no attempt was made", measured)
    if lost:
        return Verification(True, "tcp handshakes", f"{pair}: {lost} of {n} handshakes lost "
                                                    f"(expected {percent:g}%)", measured)
    chance = (1 - percent / 100) ** n
    ok = None if chance >= LOSS_FALSE_NEGATIVE else False
    return Verification(ok, "tcp handshakes", f"{pair}: none of {n} handshakes lost; a path "
                                              f"losing {percent:g}% would do that with "
                                              f"probability {chance:.2g}", measured)


def judge_pause(status: str, answers: Sequence[str], node: str) -> Verification:
    """Docker's state must be ``paused``; a request answered by the node contradicts it."""
    measured = {"node": node, "state": status, "request": list(answers)}
    if status != "paused":
        return Verification(False, "container state", f"{node} is {status}, not paused",
                            measured)
    if any(a in ("answered", "closed") for a in answers):
        return Verification(False, "stalled request", f"{node} answered a request while "
                                                      f"paused", measured)
    stalled = any(a == "stalled" for a in answers)
    how = "a request to its status port stalled" if stalled else "no request could be sent"
    return Verification(True, "container state", f"{node} is paused; {how}", measured)


def judge_killed(status: str, pid: int, node: str) -> Verification:
    measured = {"node": node, "state": status, "pid": pid}
    ok = status in ("exited", "dead", "created") and pid == 0
    return Verification(ok, "container state",
                        f"{node} is {status}" + ("" if ok else f" with pid {pid}"), measured)


def judge_server_killed(status: str, servers: Sequence[int], killed: Sequence[int],
                        node: str) -> Verification:
    """The supervised kill modes: the container still runs (its supervisor waits) and no
    server process is there -- neither a killed one nor another."""
    measured = {"node": node, "state": status, "servers": list(servers), "killed": list(killed)}
    if status != "running":
        return Verification(False, "server process", f"{node} is {status}: in a supervised kill "
                                                     "mode the container must keep running",
                            measured)
    ok = not servers
    return Verification(ok, "server process",
                        f"{node}: " + ("no server process (killed " +
                                       (", ".join(map(str, killed)) or "none of ours") + ")"
                                       if ok else f"server process(es) {list(servers)} running"),
                        measured)


def judge_silenced(server: Verification, silence: Verification | None) -> Verification:
    """Silent kill mode: the server process is gone (``server``, from
    :func:`judge_server_killed`) *and* a peer's new connection to the node went
    unanswered (``silence``, from :func:`judge_partition`; None: no peer to probe from)."""
    if silence is None or not server.ok:
        return server
    return Verification(silence.ok, "server process + tcp connect",
                        f"{server.detail}; {silence.detail}",
                        {**server.measured, "silence": dict(silence.measured)})


def judge_restarted(before: str, after: str, status: str, node: str) -> Verification:
    measured = {"node": node, "started_before": before, "started_after": after, "state": status}
    ok = bool(after) and after != before and status == "running"
    return Verification(ok, "container start time",
                        f"{node} {'started again' if ok else 'did not start again'} "
                        f"({status})", measured)


def judge_fsync(median: float, per_io: float, node: str) -> Verification:
    """An fsync needs at least one IO: with the limit each waits about ``per_io``."""
    measured = {"node": node, "fsync_ms": round(median * 1000, 2),
                "expected_ms": round(per_io * 1000, 2)}
    ok = median >= 0.5 * per_io
    return Verification(ok, "fsync", f"{node}: fsync median {median * 1000:.0f} ms "
                                     f"{'>=' if ok else '<'} half of {per_io * 1000:.0f} ms",
                        measured)


def judge_free(free: int, wanted: int, node: str, slack: int = 1024**2) -> Verification:
    measured = {"node": node, "free_bytes": free, "wanted_bytes": wanted}
    ok = free <= wanted + slack
    return Verification(ok, "statvfs", f"{node}: {free} bytes free on its data volume "
                                       f"({'at most' if ok else 'more than'} {wanted} + 1MiB)",
                        measured)


def judge_shaped(qdisc_text: str, rate_bits: float, node: str) -> Verification:
    """The htb class with our rate (tc prints it rounded: 1Mbit, 500Kbit) is in place."""
    found = [ln.strip() for ln in qdisc_text.splitlines() if "7e57:" in ln and "rate" in ln]
    measured = {"node": node, "classes": found[:4], "rate_bits": rate_bits}
    ok = any(_tc_rate(ln) is not None and abs(_tc_rate(ln) - rate_bits) <= 0.05 * rate_bits  # type: ignore[operator]
             for ln in found)
    return Verification(ok, "tc class", f"{node}: {'a' if ok else 'no'} class at "
                                        f"{rate_bits:g} bit/s", measured)


def _tc_rate(line: str) -> float | None:
    words = line.split()
    if "rate" not in words:
        return None
    text = words[words.index("rate") + 1]
    for unit, factor in (("Gbit", 1e9), ("Mbit", 1e6), ("Kbit", 1e3), ("bit", 1.0)):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * factor
            except ValueError:
                return None
    return None


def not_checked(kind: str) -> Verification:
    return Verification(None, "none", f"{kind}: no effect to measure from inside the cluster")


# -- running a probe -------------------------------------------------------------------
def run_probe(ctx: Any, node: str, targets: Sequence[tuple[str, int]], n: int, timeout: float,
              send: str = "") -> dict[str, list[tuple[str, float | None]]]:
    """Run :data:`PROBE` in ``node``'s network namespace (through the window's runner)."""
    python = getattr(ctx.runner, "python", "python3")
    wait = timeout * (2 if send else 1) * max(1, math.ceil(n * len(targets) / 50)) + 10
    result = ctx.exec(node, probe_script(python, targets, n, timeout, send), "probe",
                      check=False, timeout=wait)
    if result.code != 0:
        raise RuntimeError(f"probe in {node} failed (exit {result.code}): "
                           f"{result.output.strip()[-300:]}")
    return parse_probe(result.output)


def port_of(node: str, ports: Mapping[str, int] = PROBE_PORTS) -> int:
    return ports.get(node.split("-")[0], PROBE_PORTS["tidb"])
