"""HTTP JSON client with hard timeouts (stdlib http.client).

Connection errors, timeouts and unreadable answers all become `Unreachable`, so callers
can fail over to the next endpoint with one `except`; a reachable server's non-2xx answer
is returned to the caller (status + parsed body) because its meaning is the caller's call.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class Unreachable(Exception):
    """The endpoint did not answer in time (refused, reset, timed out, garbled)."""


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
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        send_headers = {"Content-Type": "application/json", "Connection": "close"}
        send_headers.update(headers or {})
        conn.request(method, path, body=payload, headers=send_headers)
        response = conn.getresponse()
        data = response.read()
        return HTTPResult(response.status, data)
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise Unreachable(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
    finally:
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
