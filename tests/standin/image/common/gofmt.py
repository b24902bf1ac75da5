"""Go's textual renderings (time.Time JSON, time.Duration, go-units sizes) for JSON shapes.

PD's JSON answers carry these strings; clients parse them, so they must look the same.
"""

from __future__ import annotations

import datetime as _dt


def go_time(ts: float) -> str:
    """time.Time's JSON form (RFC 3339 with nanoseconds, `Z` for UTC, else the offset)."""
    moment = _dt.datetime.fromtimestamp(ts).astimezone()
    offset = moment.utcoffset() or _dt.timedelta(0)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    nanos = f"{moment.microsecond * 1000:09d}".rstrip("0")
    frac = f".{nanos}" if nanos else ""
    if offset == _dt.timedelta(0):
        return f"{base}{frac}Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{base}{frac}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def go_duration(seconds: float) -> str:
    """time.Duration.String(): `1h2m3.5s`, `450ms`, `0s`."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        if seconds >= 1e-3:
            return f"{sign}{_trim(seconds * 1e3)}ms"
        if seconds >= 1e-6:
            return f"{sign}{_trim(seconds * 1e6)}µs"
        return f"{sign}{int(seconds * 1e9)}ns"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = sign
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{_trim(secs)}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def bytes_size(size: float) -> str:
    """docker/go-units BytesSize (`%.4g` + binary unit): `1.5GiB`, `0B`."""
    index = 0
    while size >= 1024 and index < len(_UNITS) - 1:
        size /= 1024.0
        index += 1
    text = f"{size:.4g}"
    return f"{text}{_UNITS[index]}"
