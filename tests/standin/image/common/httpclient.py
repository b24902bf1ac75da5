"""HTTP JSON client with hard timeouts (stdlib http.client).

Connection errors, timeouts and unreadable answers all become `Unreachable`, so callers
can fail over to the next endpoint with one `except`; a reachable server's non-2xx answer
is returned to the caller (status + parsed body) because its meaning is the caller's call.

Connections are kept alive per thread and per address (as gRPC keeps its channels): a
stand-in TiDB makes hundreds of PD and TiKV calls a second, and a new TCP connection (plus a
server thread) for each was most of the cluster's CPU. A connection that failed or timed out
is dropped; one that the server closed while idle is retried once on a fresh one.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class Unreachable(Exception):
    """The endpoint did not answer in time (refused, reset, timed out, garbled)."""


# Name resolution has no timeout in the C library (a container whose DNS is cut can block
# for 10 s+), so lookups run in a helper thread bounded by the call's timeout, and the
# last good answer is reused for a while and whenever a fresh lookup fails.
_DNS_FRESH = 5.0
_dns_cache: dict[str, tuple[str, float]] = {}
_dns_lock = threading.Lock()


def resolve(host: str, timeout: float) -> str:
    """`host` -> an IPv4/IPv6 address within `timeout`; raises Unreachable."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    now = time.monotonic()
    with _dns_lock:
        cached = _dns_cache.get(host)
    if cached and now - cached[1] < _DNS_FRESH:
        return cached[0]
    box: list[str] = []
    error: list[BaseException] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            box.append(str(infos[0][4][0]))
        except OSError as exc:
            error.append(exc)

    worker = threading.Thread(target=lookup, name=f"dns-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if box:
        with _dns_lock:
            _dns_cache[host] = (box[0], time.monotonic())
        return box[0]
    if cached:
        return cached[0]
    reason = error[0] if error else f"lookup timed out after {timeout:.1f}s"
    raise Unreachable(f"cannot resolve {host}: {reason}")


@dataclass(frozen=True)
class HTTPResult:
    status: int
    body: bytes

    def json(self) -> Any:
        if not self.body.strip():
            return None
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def normalize_url(endpoint: str) -> str:
    """`pd0:2379` -> `http://pd0:2379` (TiKV/TiDB accept both forms)."""
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if "://" in endpoint else f"http://{endpoint}"


def request(
    method: str,
    url: str,
    body: Any = None,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> HTTPResult:
    """Send one request; `body` is JSON-encoded (or `raw` bytes sent as is)."""
    parts = urlsplit(normalize_url(url))
    if parts.scheme not in ("http", ""):
        raise Unreachable(f"unsupported scheme in {url!r}")
    payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    started = time.monotonic()
    address = resolve(host, timeout)
    send_headers = {"Content-Type": "application/json", "Host": f"{host}:{port}"}
    send_headers.update(headers or {})
    for attempt in (1, 2):
        remaining = max(0.05, timeout - (time.monotonic() - started))
        conn, reused = _connection(address, port, remaining)
        try:
            conn.request(method, path, body=payload, headers=send_headers)
            response = conn.getresponse()
            data = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            _drop(address, port)
            stale = reused and not isinstance(exc, TimeoutError)
            if stale and attempt == 1:
                continue  # the server closed it while idle: once more on a new connection
            raise Unreachable(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
        if response.will_close:
            _drop(address, port)
        return HTTPResult(response.status, data)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


_pools = threading.local()


def _connection(address: str, port: int, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
    """This thread's kept-alive connection to ``address:port`` (new: ``reused`` False)."""
    pool: dict[tuple[str, int], http.client.HTTPConnection] = _pools.__dict__.setdefault("pool", {})
    conn = pool.get((address, port))
    if conn is None or conn.sock is None:
        conn = pool[(address, port)] = http.client.HTTPConnection(address, port, timeout=timeout)
        return conn, False
    conn.timeout = timeout
    conn.sock.settimeout(timeout)
    return conn, True


def _drop(address: str, port: int) -> None:
    pool: dict[tuple[str, int], http.client.HTTPConnection] = _pools.__dict__.setdefault("pool", {})
    conn = pool.pop((address, port), None)
    if conn is not None:
        conn.close()


def get_json(url: str, *, timeout: float) -> tuple[int, Any]:
    result = request("GET", url, timeout=timeout)
    try:
        return result.status, result.json()
    except ValueError:
        return result.status, result.body.decode(errors="replace")


def post_json(url: str, body: Any = None, *, timeout: float) -> tuple[int, Any]:
    result = request("POST", url, body, timeout=timeout)
    try:
        return result.status, result.json()
    except ValueError:
        return result.status, result.body.decode(errors="replace")
