"""A small threaded HTTP server with a regex router and JSON responses.

Every role serves HTTP (PD API, TiKV RPC and status, TiDB status) through this module so
they share one behaviour: HTTP/1.1 with Content-Length, Go-like JSON bodies, a socket
timeout so a stuck client never pins a thread, and handler exceptions turned into 500s
instead of dead servers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from common.log import get_logger

log = get_logger("http")


@dataclass(frozen=True)
class Request:
    """One parsed request; `params` holds the router's named groups."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    client: str = ""

    def json(self) -> Any:
        """The body parsed as JSON (None for an empty body); raises ValueError when invalid."""
        if not self.body.strip():
            return None
        return json.loads(self.body)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class Response:
    """What a handler returns; `body` is JSON-encoded unless `raw` is given."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json; charset=UTF-8"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return (json.dumps(self.body, indent=2, default=str) + "\n").encode()


def json_response(body: Any, status: int = 200) -> Response:
    return Response(status=status, body=body)


def text_response(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status=status, raw=text.encode(), content_type=content_type)


def empty_response(status: int = 200) -> Response:
    return Response(status=status, raw=b"", content_type="text/plain; charset=utf-8")


Handler = Callable[[Request], Response]


class Router:
    """Method + full-match regex routing; the first matching route wins."""

    def __init__(self) -> None:
        self._routes: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []

    def add(self, methods: str | tuple[str, ...], pattern: str, handler: Handler) -> None:
        names = (methods,) if isinstance(methods, str) else methods
        self._routes.append((frozenset(m.upper() for m in names), re.compile(pattern), handler))

    def route(self, request: Request) -> Response:
        allowed = False
        for methods, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if not match:
                continue
            if "*" not in methods and request.method not in methods:
                allowed = True
                continue
            req = Request(
                request.method, request.path, request.query, request.headers, request.body,
                match.groupdict(), request.client,
            )
            return handler(req)
        if allowed:
            return text_response("405 method not allowed\n", 405)
        return text_response("404 page not found\n", 404)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin"
    timeout = 30  # idle keep-alive connections and slow clients release their thread

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        pass

    def _serve(self) -> None:
        server: HTTPServer = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=self.client_address[0] if self.client_address else "",
        )
        try:
            response = server.router.route(request)
        except Exception as exc:  # a handler bug must not kill the server
            log.exception("http handler failed", path=request.path, method=request.method)
            response = json_response(str(exc), 500)
        payload = response.encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers:
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], router: Router) -> None:
        self.router = router
        super().__init__(address, _Handler)


def serve(host: str, port: int, router: Router, name: str = "http") -> HTTPServer:
    """Bind `host:port` and serve `router` from a daemon thread; returns the server."""
    server = HTTPServer((host or "0.0.0.0", port), router)  # noqa: S104 - as the real servers
    thread = threading.Thread(target=server.serve_forever, name=f"{name}-{port}", daemon=True)
    thread.start()
    log.info("http server started", name=name, addr=f"{host or '0.0.0.0'}:{port}")  # noqa: S104
    return server


def split_host_port(addr: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `http://host:port/`, `:port` or `host` -> (host, port)."""
    text = addr.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host, int(port)
