"""The NFQUEUE delayer is a real module, shipped as its own text (no Docker, no netlink)."""

from __future__ import annotations

import shlex
import socket
import struct
import subprocess
import sys
from pathlib import Path

from pytest_tidb_ha.faults import delayer, nfqueue_delayer
from pytest_tidb_ha.faults.ledger import Tag
from pytest_tidb_ha.faults.network import delayer_start_script


def test_the_shipped_source_is_the_module_file() -> None:
    assert nfqueue_delayer.__file__ is not None
    assert Path(nfqueue_delayer.__file__).read_text(encoding="utf-8") == delayer.SOURCE
    script = delayer_start_script("python3", 1234, 50, 5, Tag.mine("run1", "delayer-1234"))
    assert f"python3 -c {shlex.quote(delayer.SOURCE)} 1234 50 5 " in script
    assert "ready" in delayer.SOURCE  # the stop script and the start wait both look for it


def test_the_program_runs_without_the_package() -> None:
    """``-I``: no site-packages, no cwd; it gets as far as reading its arguments."""
    proc = subprocess.run([sys.executable, "-I", "-c", delayer.SOURCE, "queue?", "50", "0", "t"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1
    assert "invalid literal for int() with base 10: 'queue?'" in proc.stderr, proc.stderr
    assert "ModuleNotFoundError" not in proc.stderr


def _nlmsg(kind: int, body: bytes) -> bytes:
    msg = struct.pack("=IHHII", 16 + len(body), kind, 0, 7, 0) + body
    return msg + b"\0" * ((4 - len(msg) % 4) % 4)


def test_packet_ids_reads_queued_packets_only() -> None:
    nd = nfqueue_delayer
    nfgen = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(1234))
    packet = (SUBSYS := nd.SUBSYS_QUEUE << 8) | nd.MSG_PACKET
    hdr = struct.pack("!IHB", 0xDEADBEEF, 0x0800, 3)  # packet id, hw protocol, hook
    first = _nlmsg(packet, nfgen + nd.attr(9, b"\x01\x02\x03") + nd.attr(nd.PACKET_HDR, hdr))
    second = _nlmsg(packet, nfgen + nd.attr(nd.PACKET_HDR | 0x8000, struct.pack("!IHB", 42, 0, 0)))
    other = _nlmsg(SUBSYS | nd.MSG_CONFIG, nfgen + nd.attr(nd.PACKET_HDR, struct.pack("!I", 99)))
    assert nd.packet_ids(first + other + second) == [0xDEADBEEF, 42]
    assert nd.packet_ids(first[:10]) == []  # a truncated header is no packet


def test_verdict_message_layout() -> None:
    nd = nfqueue_delayer
    msg = nd.message(1234, nd.MSG_VERDICT, nd.verdict(42), nd.REQUEST, seq=5)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", msg)
    assert (length, kind, flags, seq) == (len(msg), (nd.SUBSYS_QUEUE << 8) | nd.MSG_VERDICT, 1, 5)
    assert struct.unpack_from("!H", msg, 18)[0] == 1234  # res_id: the queue, big-endian
    assert struct.unpack_from("=HH", msg, 20) == (12, nd.VERDICT_HDR)
    assert struct.unpack_from("!II", msg, 24) == (nd.NF_ACCEPT, 42)
