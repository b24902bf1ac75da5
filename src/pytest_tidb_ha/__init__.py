"""pytest-tidb-ha: TiDB high-availability regression cases as ordinary pytest runs."""

from __future__ import annotations

__version__ = "0.1.0"
