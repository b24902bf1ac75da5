"""A user-space packet delayer on NFQUEUE, for kernels without ``sch_netem``.

Some kernels (this project's CI VMs among them) are built without netem, so
``tc qdisc ... netem`` fails with "Specified qdisc kind is unknown". Then
``network_delay`` sends the selected packets through ``iptables -j NFQUEUE
--queue-bypass`` to this program, which holds each packet for the latency (plus
uniform jitter) and accepts it: :mod:`.nfqueue_delayer`. It runs inside the target's
network namespace (``nsenter -n`` or the helper container), speaks the nfnetlink queue protocol with
the standard library only, and is started before the rules are inserted.
``--queue-bypass`` makes a dead delayer harmless: with no listener packets pass.

Run as ``python3 -c SOURCE <queue> <latency ms> <jitter ms> <tag>``; it prints
``ready`` once bound and exits on SIGTERM.
"""

from __future__ import annotations

from importlib import resources

#: The program's text, shipped with ``-c`` so that nothing needs to be installed where it
#: runs. It is a real module of this package (ruff and mypy check it; the unit tests
#: import its pure parts), read as package data.
SOURCE = (resources.files("pytest_tidb_ha.faults") / "nfqueue_delayer.py").read_text(encoding="utf-8")


def queue_number(tag: str) -> int:
    """A queue number per fault (1000..32999), stable for the tag."""
    import zlib

    return 1000 + zlib.crc32(tag.encode()) % 32000
