"""Loopback helpers shared by the unit tests that talk to fake TiDB/PD servers."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A loopback port nothing listens on: bound once to learn a free number, then closed.

    Connecting to it is refused at once, which is how the tests stand in for a dead node.
    """
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port
