"""The roles' HTTP client keeps connections alive and survives a server that closed one
(no Docker: a real `common.httpserver` on loopback)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from common import httpclient
from common.httpserver import HTTPServer, Request, Response, Router, json_response, serve


@pytest.fixture
def server() -> Iterator[tuple[HTTPServer, list[int]]]:
    ports: list[int] = []
    router = Router()

    def echo(req: Request) -> Response:
        return json_response({"client": req.client})

    router.add("GET", "/echo", echo)
    srv = serve("127.0.0.1", 0, router, name="test")
    original = srv.get_request

    def counting() -> tuple[socket.socket, object]:
        conn, addr = original()
        ports.append(conn.getpeername()[1])
        return conn, addr

    srv.get_request = counting  # type: ignore[method-assign]
    try:
        yield srv, ports
    finally:
        srv.shutdown()
        srv.server_close()


def url(srv: HTTPServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/echo"


def test_one_connection_carries_many_requests(server: tuple[HTTPServer, list[int]]) -> None:
    srv, accepted = server
    for _ in range(5):
        assert httpclient.get_json(url(srv), timeout=5)[0] == 200
    assert len(accepted) == 1, accepted
    other: list[int] = []
    worker = threading.Thread(target=lambda: other.append(httpclient.get_json(url(srv), timeout=5)[0]))
    worker.start()
    worker.join(10)
    assert other == [200]
    assert len(accepted) == 2


def test_a_connection_the_server_dropped_is_replaced() -> None:
    """A server that answers and then closes the connection without saying so (as an idle
    timeout does): the next request on it fails, and is sent again on a new connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve_once_per_connection() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2\r\n\r\n{}")

    threading.Thread(target=serve_once_per_connection, daemon=True).start()
    target = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    try:
        assert httpclient.get_json(target, timeout=5) == (200, {})
        assert httpclient.get_json(target, timeout=5) == (200, {})
    finally:
        listener.close()
    assert len(accepted) == 2
