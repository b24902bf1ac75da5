"""``kill`` in the default ``silent`` mode: the server dies and its address goes silent.

Why (issue 13: kill's heal p95 <= 100 ms). A kill that ends the container is healed by
``docker start``, and Docker's own least start on this engine is 150-370 ms: no heal
through Docker meets the goal. Killing only the server process (the container and its
network namespace stay, PID 1 being the sh supervisor of :mod:`..cluster.supervisor`)
heals in milliseconds, but changes what the node's **peers** see: the namespace's
kernel refuses their connections at once, where a deleted pod's (or a stopped
container's) address leaves them unanswered until their own timeouts -- and how soon
PD, TiKV and TiDB give up on a node decides what a kill case tests.

So the default kill does both: SIGKILL to the server (its sockets close as in a
container kill: the peers' open connections end), then, in the node's namespace, one
``iptables-restore`` that drops every packet from and to the cluster's other nodes.
The heal deletes those rules and starts the server again. For the window:

* a **peer's** new connection goes unanswered (timeout), as with container mode's
  torn-down namespace; the node sends its peers nothing either;
* a **host** client (a published port goes through docker-proxy, which connects from the
  network's gateway; the watcher, the workload) is answered with a TCP reset, so it fails
  at once, as with a stopped container's published port (Docker removes it): a hung
  client would change the workload's and the watcher's timing, not the cluster's;
* the container stays ``running`` with the same id, address and ``docker logs``.

The rules carry the window's tag (:mod:`.ledger`), so a run killed in the window leaves
nothing a later run's reaper does not heal. Planning is pure (unit-tested).
"""

from __future__ import annotations

from collections.abc import Mapping

from .ledger import Tag
from .network import rule_line


def silence_lines(node: str, ips: Mapping[str, str], tag: Tag) -> list[str]:
    """The ``iptables-restore`` lines that silence ``node`` towards every other node of
    ``ips`` and reset any other new TCP connection (see the module doc; a connection on
    ``lo`` is refused anyway: nothing listens in the node while its server is dead; and
    no ``!`` negation: iptables-restore does not read the quoted word shlex writes).

    Each line inserts at the top of its chain, so the last line ends up first: the
    peers' DROP rules go after the REJECT line to be matched before it."""
    comment = ["-m", "comment", "--comment", str(tag)]
    peers = sorted({ip for name, ip in ips.items() if name != node and ip != ips.get(node)})
    lines = [rule_line("-I", "INPUT", ["-p", "tcp", "--syn", *comment,
                                       "-j", "REJECT", "--reject-with", "tcp-reset"])]
    lines += [rule_line("-I", "INPUT", ["-s", f"{ip}/32", *comment, "-j", "DROP"])
              for ip in peers]
    lines += [rule_line("-I", "OUTPUT", ["-d", f"{ip}/32", *comment, "-j", "DROP"])
              for ip in peers]
    return lines
