"""Tiny HTTP helpers for PD/TiDB/TiKV status APIs (standard library, always a timeout)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

DEFAULT_TIMEOUT = 3.0


class HTTPProblem(Exception):
    """A request that did not give a usable answer (refused, timed out, non-2xx, bad JSON)."""

    def __init__(self, url: str, detail: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        self.detail = detail
        super().__init__(f"{url}: {detail}")


def request(url: str, *, method: str = "GET", timeout: float = DEFAULT_TIMEOUT,
            body: bytes | None = None) -> tuple[int, bytes]:
    """``(status, body)``; raises :class:`HTTPProblem` on connection errors/timeouts only."""
    req = urllib.request.Request(url, method=method, data=body)  # noqa: S310 - http URLs we build
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the same URL
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read()
        except Exception:  # noqa: BLE001
            data = b""
        return int(exc.code), data
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HTTPProblem(url, f"{type(reason).__name__}: {reason}") from exc


def get_json(url: str, *, timeout: float = DEFAULT_TIMEOUT, method: str = "GET") -> Any:
    """Decoded JSON of a 2xx answer; :class:`HTTPProblem` for anything else."""
    status, body = request(url, method=method, timeout=timeout)
    if not 200 <= status < 300:
        snippet = body[:200].decode("utf-8", "replace").strip()
        raise HTTPProblem(url, f"HTTP {status} {snippet}", status)
    try:
        return json.loads(body) if body.strip() else None
    except ValueError as exc:
        raise HTTPProblem(url, f"not JSON: {body[:120]!r}", status) from exc
