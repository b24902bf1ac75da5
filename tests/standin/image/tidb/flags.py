"""The TiDB role's view of its command line.

Parsing (Go ``flag`` syntax, ``--config`` TOML, exit codes on bad flags) is the shared
``common.flags.parse_tidb``; this module narrows its result to what the role uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TiDBFlags:
    store: str
    path: str  # comma list of PD endpoints (host:port)
    host: str
    advertise_address: str
    port: int
    status_port: int
    status_host: str
    log_file: str
    log_level: str
    lease_seconds: float  # --lease (unscaled; the role scales it: server.Node.lease)
    run_ddl: bool
    report_status: bool = True


def from_config(cfg: Any) -> TiDBFlags:
    """Build the role's flags from ``common.flags.TidbConfig``."""
    endpoints = list(cfg.pd_endpoints) or [e.strip() for e in str(cfg.path).split(",") if e.strip()]
    return TiDBFlags(
        store=str(cfg.store),
        path=",".join(endpoints),
        host=str(cfg.host),
        advertise_address=str(cfg.advertise_address or ""),
        port=int(cfg.port),
        status_port=int(cfg.status_port),
        status_host=str(cfg.status_host),
        log_file=str(cfg.log_file or ""),
        log_level=str(cfg.log_level or "info"),
        lease_seconds=float(cfg.lease),
        run_ddl=bool(cfg.run_ddl),
        report_status=bool(getattr(cfg, "report_status", True)),
    )
