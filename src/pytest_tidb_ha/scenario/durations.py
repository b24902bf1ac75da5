"""Durations as QA case files write them.

Accepted forms (Go-style units, like the QA harness the seeds come from):

* ``500ms``, ``90s``, ``1m``, ``1h30m``, ``1.5m``, ``2h``, ``1m30s``;
* ``@every 5m`` (cron-style period, as in ``period: "@every 5m"``);
* a bare number (YAML int/float or a numeric string) means **seconds** --
  the only unit a Python caller would assume (``duration=90``).

Booleans, empty strings and unknown units are errors; every error message
names the offending value so the loader can prefix ``file:line``.
"""

from __future__ import annotations

import math
import re

from .model import Duration

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
#: One `<number><unit>` part of a duration (`1h30m` is two); the JSON Schema reuses it.
PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)")
_EVERY = re.compile(r"^@every\s+(.+)$")


class DurationError(ValueError):
    """A value that is not a duration; the message names the value."""


def parse_duration(value: object, *, allow_every: bool = False) -> Duration:
    """Parse ``value`` into a :class:`Duration` (may be zero or negative-free).

    ``allow_every`` accepts the ``@every 5m`` period form. Sign checks
    (zero/negative) are the caller's business, because ``warmUpTime: 0s``
    is legitimate while ``faultDuration: 0s`` is not.
    """
    if isinstance(value, bool) or value is None:
        raise DurationError(f"{value!r} is not a duration (write e.g. 90s, 1m, 1h30m, 500ms)")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise DurationError(f"{value!r} is not a finite duration")
        return Duration(float(value), f"{value:g}s")
    if not isinstance(value, str):
        raise DurationError(f"{value!r} is not a duration (write e.g. 90s, 1m, 1h30m, 500ms)")
    text = value.strip()
    every = _EVERY.match(text)
    if every:
        if not allow_every:
            raise DurationError(f"{value!r}: '@every' is only allowed for a period")
        inner = parse_duration(every.group(1).strip())
        return Duration(inner.seconds, text)
    sign = 1.0
    body = text
    if body.startswith("-"):
        sign, body = -1.0, body[1:]
    try:
        seconds = float(body)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise DurationError(f"{value!r} is not a finite duration")
        return Duration(sign * seconds, text)
    pos = 0
    total = 0.0
    for match in PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        raise DurationError(
            f"{value!r} is not a duration (units ms, s, m, h; e.g. 90s, 1m, 1h30m, 500ms)"
        )
    return Duration(sign * total, text)


def parse_period(value: object) -> Duration:
    """A fault period: ``@every 5m`` or a plain duration."""
    return parse_duration(value, allow_every=True)


def format_seconds(seconds: float) -> str:
    """Compact human form used by the dry-run plan (``1h2m3s``, ``0.6s``, ``250ms``)."""
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.0f}ms" if abs(ms - round(ms)) < 1e-6 else f"{ms:.3g}ms"
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds != int(seconds) else f"{int(seconds)}s"
    whole = round(seconds)
    if abs(seconds - whole) > 0.05:
        # keep sub-second precision readable for odd scaled values
        minutes, rest = divmod(seconds, 60.0)
        hours, minutes = divmod(int(minutes), 60)
        head = f"{hours}h" if hours else ""
        return f"{head}{minutes}m{rest:.1f}s" if minutes or hours else f"{rest:.1f}s"
    hours, rem = divmod(whole, 3600)
    minutes, secs = divmod(rem, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or not out:
        out += f"{secs}s"
    return out
