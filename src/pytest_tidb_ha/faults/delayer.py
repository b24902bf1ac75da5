"""A user-space packet delayer on NFQUEUE, for kernels without ``sch_netem``.

Some kernels (this project's CI VMs among them) are built without netem, so
``tc qdisc ... netem`` fails with "Specified qdisc kind is unknown". Then
``network_delay`` sends the selected packets through ``iptables -j NFQUEUE
--queue-bypass`` to this program, which holds each packet for the latency (plus
uniform jitter) and accepts it. It runs inside the target's network namespace
(``nsenter -n`` or the helper container), speaks the nfnetlink queue protocol with
the standard library only, and is started before the rules are inserted.
``--queue-bypass`` makes a dead delayer harmless: with no listener packets pass.

Run as ``python3 -c SOURCE <queue> <latency ms> <jitter ms> <tag>``; it prints
``ready`` once bound and exits on SIGTERM.
"""

from __future__ import annotations

SOURCE = r'''
import heapq, os, random, select, signal, socket, struct, sys, time
queue, latency, jitter = int(sys.argv[1]), float(sys.argv[2]) / 1000, float(sys.argv[3]) / 1000
NETLINK_NETFILTER, SUBSYS_QUEUE = 12, 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
REQUEST, ACK = 1, 4
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN, CFG_MASK, CFG_FLAGS = 1, 2, 3, 4, 5
CMD_BIND, COPY_META, F_FAIL_OPEN, NF_ACCEPT = 1, 1, 1, 1
PACKET_HDR, VERDICT_HDR = 1, 2
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
sock.bind((0, 0))
seq = 0

def attr(kind, payload):
    pad = (4 - len(payload) % 4) % 4
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * pad

def send(msg, attrs, flags=REQUEST):
    global seq
    seq += 1
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    sock.send(struct.pack("=IHHII", 16 + len(body), (SUBSYS_QUEUE << 8) | msg, flags, seq, 0) + body)

def config(attrs):
    send(MSG_CONFIG, attrs, REQUEST | ACK)
    data = sock.recv(65536)
    length, kind = struct.unpack_from("=IH", data)
    if kind == 2:  # NLMSG_ERROR
        err = struct.unpack_from("=i", data, 16)[0]
        if err != 0:
            raise OSError(-err, "nfqueue config: " + os.strerror(-err))

config([attr(CFG_CMD, struct.pack("!BBH", CMD_BIND, 0, 0))])
config([attr(CFG_PARAMS, struct.pack("!IB", 0, COPY_META) + b"\0\0\0")])
config([attr(CFG_QUEUE_MAXLEN, struct.pack("!I", 65536))])
config([attr(CFG_MASK, struct.pack("!I", F_FAIL_OPEN)), attr(CFG_FLAGS, struct.pack("!I", F_FAIL_OPEN))])
running = True
def stop(*_):
    global running
    running = False
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
held, n = [], 0
while running:
    now = time.monotonic()
    while held and held[0][0] <= now:
        _, _, pid = heapq.heappop(held)
        send(MSG_VERDICT, [attr(VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))], REQUEST)
    wait = max(0.0, held[0][0] - now) if held else 0.5
    try:
        ready, _, _ = select.select([sock], [], [], wait)
    except InterruptedError:
        continue
    if not ready:
        continue
    try:
        data = sock.recv(1 << 20)
    except OSError:  # ENOBUFS under a burst: the kernel fails open for what it dropped
        continue
    off = 0
    while off + 16 <= len(data):
        length, kind, flags, _, _ = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            break
        if kind == (SUBSYS_QUEUE << 8) | MSG_PACKET:
            a = off + 20
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype & 0x7FFF == PACKET_HDR:
                    pid = struct.unpack_from("!I", data, a + 4)[0]
                    delay = latency + (random.uniform(-jitter, jitter) if jitter else 0.0)
                    n += 1
                    heapq.heappush(held, (time.monotonic() + max(0.0, delay), n, pid))
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
for _, _, pid in held:  # let everything still held go at once
    send(MSG_VERDICT, [attr(VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))], REQUEST)
'''


def queue_number(tag: str) -> int:
    """A queue number per fault (1000..32999), stable for the tag."""
    import zlib

    return 1000 + zlib.crc32(tag.encode()) % 32000
