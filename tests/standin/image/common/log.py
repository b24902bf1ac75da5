"""Logging in TiDB's unified log format, to stderr (for `docker logs`) and `--log-file`.

    [2023/11/12 14:12:48.454 +08:00] [ERROR] [file.py:751] ["msg with space"] [key=value]

The plugin's diagnostics grep these lines like they grep a real cluster's logs, so every
role logs through `get_logger(...)` with structured fields: `log.info("msg", key=value)`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

_SAFE = re.compile(r"^[A-Za-z0-9_\-./:@=+,]*$")
_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
}
_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "FATAL",
}


def quote(value: object) -> str:
    """Render one value as pingcap/log does: bare when safe, else a JSON-quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str, separators=(",", ":"))
    else:
        text = str(value)
    if text and _SAFE.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def timestamp(now: float | None = None) -> str:
    """`2023/11/12 14:12:48.454 +08:00` in local time."""
    now = time.time() if now is None else now
    local = time.localtime(now)
    offset = local.tm_gmtoff or 0
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    millis = int((now % 1) * 1000)
    return (
        time.strftime("%Y/%m/%d %H:%M:%S", local)
        + f".{millis:03d} {sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"
    )


class TiDBFormatter(logging.Formatter):
    """Formats a record as one TiDB log line; fields come from `record.fields`."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        parts = [
            f"[{timestamp(record.created)}]",
            f"[{_NAMES.get(record.levelno, record.levelname)}]",
            f"[{os.path.basename(record.pathname)}:{record.lineno}]",
            f"[{quote(record.getMessage())}]",
        ]
        parts.extend(f"[{key}={quote(value)}]" for key, value in fields.items())
        if record.exc_info:
            parts.append(f"[error={quote(self.formatException(record.exc_info))}]")
        return " ".join(parts)


class Logger:
    """Thin structured wrapper: `log.warn("PD failed to respond", endpoint=url)`."""

    def __init__(self, inner: logging.Logger) -> None:
        self._inner = inner

    def _log(self, level: int, msg: str, exc: bool, fields: dict[str, Any]) -> None:
        if self._inner.isEnabledFor(level):
            self._inner.log(level, msg, extra={"fields": fields}, exc_info=exc, stacklevel=3)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, False, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, False, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, False, fields)

    warning = warn

    def error(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, False, fields)

    def exception(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, True, fields)

    def fatal(self, msg: str, **fields: Any) -> None:
        """Log at FATAL; the caller decides how to exit (real servers exit 1)."""
        self._log(logging.CRITICAL, msg, False, fields)


_ROOT = "standin"


def parse_level(name: str | None, default: int = logging.INFO) -> int | None:
    """Map a TiDB/PD/TiKV level name (`info`, `warn`, ...) to a logging level; None if unknown."""
    if not name:
        return default
    return _LEVELS.get(name.strip().upper())


def setup(level: str | None = "info", log_file: str | None = None) -> Logger:
    """Configure the process's log sinks (stderr always, plus `log_file` when given)."""
    root = logging.getLogger(_ROOT)
    root.handlers.clear()
    root.propagate = False
    root.setLevel(parse_level(level) or logging.INFO)
    formatter = TiDBFormatter()
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(formatter)
    root.addHandler(err)
    if log_file:
        directory = os.path.dirname(os.path.abspath(log_file))
        os.makedirs(directory, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return get_logger()


def get_logger(name: str | None = None) -> Logger:
    """A structured logger below the stand-in root (`get_logger("pd.api")`)."""
    return Logger(logging.getLogger(_ROOT if not name else f"{_ROOT}.{name}"))


def raw_line(line: str) -> None:
    """Forward one already-formatted line (e.g. from the etcd child) to every sink."""
    root = logging.getLogger(_ROOT)
    for handler in root.handlers:
        stream = getattr(handler, "stream", None)
        if stream is None:
            continue
        try:
            stream.write(line.rstrip("\n") + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass
