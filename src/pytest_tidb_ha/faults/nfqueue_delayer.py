"""The NFQUEUE packet delayer program itself (see :mod:`.delayer` for when and how it runs).

A standalone script, not a library module: :mod:`.delayer` ships this file's text as
``python3 -c SOURCE <queue> <latency ms> <jitter ms> <tag>`` into the target's network
namespace, where neither this package nor anything outside the standard library exists
(the host's python under ``nsenter -n``, or the helper image's python3). So it imports
only the standard library, runs on Python 3.10+, and does its work under ``__main__``
only; importing it (ruff, mypy, the unit tests) starts nothing.

It binds one nfnetlink queue, holds each queued packet for the latency (plus uniform
jitter) and then accepts it, prints ``ready`` once bound, and on SIGTERM/SIGINT lets
everything it still holds go at once and exits. The trailing ``<tag>`` argument is not read:
it names the fault in the process' command line.
"""

from __future__ import annotations

import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER, SUBSYS_QUEUE = 12, 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
REQUEST, ACK = 1, 4
NLMSG_ERROR = 2
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN, CFG_MASK, CFG_FLAGS = 1, 2, 3, 4, 5
CMD_BIND, COPY_META, F_FAIL_OPEN, NF_ACCEPT = 1, 1, 1, 1
PACKET_HDR, VERDICT_HDR = 1, 2
NLMSG_HDR = 16  # struct nlmsghdr
NFGEN_HDR = 4  # struct nfgenmsg


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute (length, type, payload padded to 4 bytes)."""
    pad = (4 - len(payload) % 4) % 4
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * pad


def message(queue: int, msg: int, attrs: list[bytes], flags: int, seq: int) -> bytes:
    """One nfnetlink queue message for ``queue``: nlmsghdr + nfgenmsg + attributes."""
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", NLMSG_HDR + len(body), (SUBSYS_QUEUE << 8) | msg, flags,
                       seq, 0) + body


def verdict(packet_id: int) -> list[bytes]:
    """The attributes of an NF_ACCEPT verdict for one packet."""
    return [attr(VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))]


def packet_ids(data: bytes) -> list[int]:
    """The packet ids of the queued-packet messages in one netlink datagram."""
    ids: list[int] = []
    off = 0
    while off + NLMSG_HDR <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
        if length < NLMSG_HDR:
            break
        if kind == (SUBSYS_QUEUE << 8) | MSG_PACKET:
            a = off + NLMSG_HDR + NFGEN_HDR
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype & 0x7FFF == PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, a + 4)[0])
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
    return ids


class Queue:
    """The bound nfnetlink queue socket."""

    def __init__(self, queue: int) -> None:
        self.queue = queue
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, 0))

    def send(self, msg: int, attrs: list[bytes], flags: int = REQUEST) -> None:
        self.seq += 1
        self.sock.send(message(self.queue, msg, attrs, flags, self.seq))

    def config(self, attrs: list[bytes]) -> None:
        """Send a config message and raise the kernel's error, if it answers one."""
        self.send(MSG_CONFIG, attrs, REQUEST | ACK)
        data = self.sock.recv(65536)
        _length, kind = struct.unpack_from("=IH", data)
        if kind == NLMSG_ERROR:
            err = struct.unpack_from("=i", data, NLMSG_HDR)[0]
            if err != 0:
                raise OSError(-err, "nfqueue config: " + os.strerror(-err))

    def bind(self) -> None:
        """Bind the queue, copy packet metadata only, and fail open when it is full."""
        self.config([attr(CFG_CMD, struct.pack("!BBH", CMD_BIND, 0, 0))])
        self.config([attr(CFG_PARAMS, struct.pack("!IB", 0, COPY_META) + b"\0\0\0")])
        self.config([attr(CFG_QUEUE_MAXLEN, struct.pack("!I", 65536))])
        self.config([attr(CFG_MASK, struct.pack("!I", F_FAIL_OPEN)),
                     attr(CFG_FLAGS, struct.pack("!I", F_FAIL_OPEN))])

    def accept(self, packet_id: int) -> None:
        self.send(MSG_VERDICT, verdict(packet_id), REQUEST)


def run(queue: int, latency: float, jitter: float) -> None:
    """Delay every packet of ``queue`` by ``latency`` ± ``jitter`` seconds until SIGTERM."""
    q = Queue(queue)
    q.bind()
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # select() resumes after a signal (PEP 475) and may be waiting for a packet due in a
    # minute: the wake-up socket makes a SIGTERM end the wait at once.
    wake, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    print("ready", flush=True)
    held: list[tuple[float, int, int]] = []  # (release time, arrival number, packet id)
    n = 0
    while running:
        now = time.monotonic()
        while held and held[0][0] <= now:
            q.accept(heapq.heappop(held)[2])
        wait = max(0.0, held[0][0] - now) if held else 0.5
        ready, _, _ = select.select([q.sock, wake], [], [], wait)
        if wake in ready:
            wake.recv(64)  # a signal arrived; its handler has run, the loop re-checks
        if q.sock not in ready:
            continue
        try:
            data = q.sock.recv(1 << 20)
        except OSError:  # ENOBUFS under a burst: the kernel fails open for what it dropped
            continue
        for pid in packet_ids(data):
            delay = latency + (random.uniform(-jitter, jitter) if jitter else 0.0)  # noqa: S311 - jitter
            n += 1
            heapq.heappush(held, (time.monotonic() + max(0.0, delay), n, pid))
    for _, _, pid in held:  # let everything still held go at once
        q.accept(pid)


def main(argv: list[str]) -> None:
    run(int(argv[1]), float(argv[2]) / 1000, float(argv[3]) / 1000)


if __name__ == "__main__":
    main(sys.argv)
