"""Byte sizes (``free: 10MB``) and rates (``rate: 1mbit``) as case files write them (pure).

Sizes: a bare number is bytes; ``kB``/``MB``/``GB`` are powers of 1000, ``KiB``/``MiB``/
``GiB`` powers of 1024 (``K``/``M``/``G`` alone: 1024, as ``df``/``fallocate`` read them).
Rates follow ``tc``: ``bit``/``kbit``/``mbit``/``gbit`` are bits per second, ``bps``/
``kbps``/``mbps``/``gbps`` *bytes* per second (tc's own, surprising, convention), and
``B/s``/``kB/s``/``MB/s`` bytes per second as people write them. Errors name the value.
"""

from __future__ import annotations

import re

SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "k": 1024, "m": 1024**2, "g": 1024**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3}
RATE_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9,
               "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9,
               "b/s": 8, "kb/s": 8e3, "mb/s": 8e6, "gb/s": 8e9}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z/]*)\s*$")


class SizeError(ValueError):
    """Not a size or rate; the message names the value."""


def parse_size(value: object) -> int:
    """Bytes: ``10MB`` -> 10_000_000, ``512MiB`` -> 536870912, ``0`` -> 0."""
    if isinstance(value, bool):
        raise SizeError(f"{value!r} is not a size (write e.g. 10MB, 512MiB, 0)")
    if isinstance(value, int):
        if value < 0:
            raise SizeError(f"{value!r}: a size must not be negative")
        return value
    match = _NUMBER.match(str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in SIZE_UNITS:
        raise SizeError(f"{value!r} is not a size (units kB, MB, GB, KiB, MiB, GiB; "
                        f"a bare number is bytes)")
    return int(float(match.group(1)) * SIZE_UNITS[unit])


def parse_rate(value: object) -> float:
    """Bits per second: ``1mbit`` -> 1e6, ``100kbps`` (tc: kilobytes/s) -> 8e5."""
    match = _NUMBER.match(str(value)) if not isinstance(value, bool) else None
    unit = match.group(2).lower() if match else None
    if match is None or unit not in RATE_UNITS:
        raise SizeError(f"{value!r} is not a rate (e.g. 1mbit, 500kbit, 10MB/s; tc's units "
                        f"bit/kbit/mbit/gbit are bits, bps/kbps/mbps bytes per second)")
    bits = float(match.group(1)) * RATE_UNITS[unit]
    if bits <= 0:
        raise SizeError(f"{value!r}: a rate must be above zero")
    return bits


def format_size(n: int) -> str:
    """``10485760`` -> ``10MiB``, ``10000000`` -> ``10MB`` (exact units when they fit, else bytes)."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024),
                         ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"


def format_rate(bits: float) -> str:
    """``1e6`` -> ``1mbit`` (tc's spelling)."""
    for unit, factor in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits >= factor:
            return f"{bits / factor:g}{unit}"
    return f"{bits:g}bit"
