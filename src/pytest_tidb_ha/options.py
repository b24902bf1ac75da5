"""Resolved plugin options (pytest-free model; parsing lives beside it).

Precedence for every option: marker > CLI > env > ini > default.
The plugin stores one :class:`HAOptions` in ``config.stash[HA_OPTIONS_KEY]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from .scenario.model import Topology

#: The newest LTS in shared/reference/tidb-containers.md (v8.5.x line).
DEFAULT_TIDB_VERSION = "v8.5.7"
COMPONENTS = ("pd", "tikv", "tidb")


def default_images(version: str) -> dict[str, str]:
    return {c: f"pingcap/{c}:{version}" for c in COMPONENTS}


@dataclass(frozen=True)
class HAOptions:
    tidb_version: str = DEFAULT_TIDB_VERSION
    images: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(default_images(DEFAULT_TIDB_VERSION))
    )
    topology: Topology | None = None  # --tidb-topology; None: what the case needs
    dsn: str | None = None  # attach mode
    pd_url: str | None = None
    time_scale: float = 1.0
    dry_run: bool = False
    artifacts: Path = Path("ha-artifacts")
    artifacts_keep: Literal["failed", "all"] = "failed"
    keep_cluster: bool = False
    workload_scale: float = 1.0
    fault_helper_image: str | None = None  # None: nsenter from the host when root
    no_docker: Literal["fail", "skip"] = "fail"

    @property
    def attach(self) -> bool:
        return self.dsn is not None
