"""pd-server's command line and ``--config`` (cobra/pflag syntax): the flag specs, the
config keys PD knows, and `parse_pd`, pure like the shared parsers in ``common.flags``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.flags import (
    FlagExit,
    FlagSpec,
    load_config,
    lookup,
    parse_duration,
    parse_pflag,
    pick_value,
    split_list,
    unknown_top_level,
    version_text,
)

PD_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("version", "bool", False, "print version information and exit", short="V"),
    FlagSpec("config-check", "bool", False, "check config file validity and exit"),
    FlagSpec("config", "string", "", "config file"),
    FlagSpec("name", "string", "", "human-readable name for this pd member"),
    FlagSpec("data-dir", "string", "", "path to the data directory (default 'default.${name}')"),
    FlagSpec("client-urls", "string", "http://127.0.0.1:2379", "urls for client traffic"),
    FlagSpec("advertise-client-urls", "string", "", "advertise urls for client traffic (default '${client-urls}')"),
    FlagSpec("peer-urls", "string", "http://127.0.0.1:2380", "urls for peer traffic"),
    FlagSpec("advertise-peer-urls", "string", "", "advertise urls for peer traffic (default '${peer-urls}')"),
    FlagSpec("initial-cluster", "string", "", "initial cluster configuration for bootstrapping, e,g. pd=http://127.0.0.1:2380"),
    FlagSpec("join", "string", "", "join to an existing cluster (usage: cluster's '${advertise-client-urls}'"),
    FlagSpec("metrics-addr", "string", "", "prometheus pushgateway address, leaves it empty will disable prometheus push"),
    FlagSpec("log-level", "string", "", "log level: debug, info, warn, error, fatal (default 'info')", short="L"),
    FlagSpec("log-file", "string", "", "log file path"),
    FlagSpec("cacert", "string", "", "path of file that contains list of trusted TLS CAs"),
    FlagSpec("cert", "string", "", "path of file that contains X509 certificate in PEM format"),
    FlagSpec("key", "string", "", "path of file that contains X509 key in PEM format"),
    FlagSpec("force-new-cluster", "bool", False, "force to create a new one-member cluster"),
)

PD_KNOWN_CONFIG = frozenset({
    "name", "data-dir", "client-urls", "advertise-client-urls", "peer-urls", "advertise-peer-urls",
    "initial-cluster", "initial-cluster-state", "initial-cluster-token", "join", "lease",
    "tso-save-interval", "tso-update-physical-interval", "enable-local-tso", "quota-backend-bytes",
    "auto-compaction-mode", "auto-compaction-retention", "auto-compaction-retention-v2",
    "tick-interval", "election-interval", "enable-prevote", "max-request-bytes", "force-new-cluster",
    "use-region-storage", "enable-grpc-gateway", "enable-dynamic-config", "metric", "log", "schedule",
    "replication", "pd-server", "cluster-version", "labels", "security", "label-property",
    "dashboard", "replication-mode", "keyspace", "controller", "namespace", "log-file", "log-level",
    "trace-region-flow", "max-concurrent-tso-proxy-streamings", "tso-proxy-recv-from-client-timeout",
    "enable-tso-dynamic-switching", "microservice", "join-cluster",
})


@dataclass(frozen=True)
class PdConfig:
    """Effective pd-server configuration (flags over `--config` file over defaults)."""

    name: str
    data_dir: str
    client_urls: tuple[str, ...]
    advertise_client_urls: tuple[str, ...]
    peer_urls: tuple[str, ...]
    advertise_peer_urls: tuple[str, ...]
    initial_cluster: str
    join: str
    config_file: str
    log_file: str
    log_level: str
    force_new_cluster: bool
    lease_seconds: int
    max_store_down_time: float  # seconds, unscaled (schedule.max-store-down-time)
    max_replicas: int
    election_interval: float  # seconds, unscaled
    tick_interval: float  # seconds, unscaled
    config: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def parse_pd(argv: Sequence[str], hostname: str | None = None) -> PdConfig:
    parsed = parse_pflag("pd-server", argv, PD_FLAGS)
    if parsed.positional:
        raise FlagExit(1, f"Error: '{parsed.positional[0]}' is an invalid flag\n")
    if parsed.get("version"):
        raise FlagExit(0, stdout=version_text("PD"))
    config, warnings = load_config(
        parsed,
        lambda c: unknown_top_level(c, PD_KNOWN_CONFIG),
        unreadable=lambda exc: FlagExit(1, f"[FATAL] parse config file error: {exc}\n"),
        unknown_message=lambda unknown: f"Config contains undefined item: {', '.join(unknown)}",
        strict=bool(parsed.get("config-check")),
        reject=lambda message: FlagExit(1, f"[FATAL] {message}\n"),
    )

    def pick(flag: str, key: str, default: Any) -> Any:
        return pick_value(parsed, config, flag, key, default)

    name = pick("name", "name", "") or f"pd-{hostname or os.uname().nodename}"
    data_dir = pick("data-dir", "data-dir", "") or f"default.{name}"
    client_urls = split_list(str(pick("client-urls", "client-urls", "http://127.0.0.1:2379")))
    peer_urls = split_list(str(pick("peer-urls", "peer-urls", "http://127.0.0.1:2380")))
    adv_client = split_list(str(pick("advertise-client-urls", "advertise-client-urls", ""))) or client_urls
    adv_peer = split_list(str(pick("advertise-peer-urls", "advertise-peer-urls", ""))) or peer_urls
    initial = str(pick("initial-cluster", "initial-cluster", ""))
    join = str(pick("join", "join", ""))
    if not initial and not join:
        initial = ",".join(f"{name}={url}" for url in adv_peer)
    for url in (*client_urls, *peer_urls, *adv_client, *adv_peer):
        if not re.match(r"^https?://[^/:]+(:\d+)?/?$", url):
            raise FlagExit(1, f'[FATAL] run server failed: URL address does not have the form "host:port": {url}\n')
    try:
        down = parse_duration(str(lookup(config, "schedule.max-store-down-time", "30m")))
        election = parse_duration(str(lookup(config, "election-interval", "3s")))
        tick = parse_duration(str(lookup(config, "tick-interval", "500ms")))
        lease = int(lookup(config, "lease", 3))
        replicas = int(lookup(config, "replication.max-replicas", 3))
    except (TypeError, ValueError) as exc:
        raise FlagExit(1, f"[FATAL] parse config file error: {exc}\n") from exc
    if parsed.get("config-check"):
        raise FlagExit(0, stdout="config check successful\n")
    level = pick("log-level", "log.level", "info")
    log_file = pick("log-file", "log.file.filename", "")
    return PdConfig(
        name=name,
        data_dir=data_dir,
        client_urls=tuple(client_urls),
        advertise_client_urls=tuple(adv_client),
        peer_urls=tuple(peer_urls),
        advertise_peer_urls=tuple(adv_peer),
        initial_cluster=initial,
        join=join,
        config_file=parsed.get("config"),
        log_file=str(log_file),
        log_level=str(level),
        force_new_cluster=bool(parsed.get("force-new-cluster")),
        lease_seconds=lease,
        max_store_down_time=down,
        max_replicas=replicas,
        election_interval=election,
        tick_interval=tick,
        config=config,
        warnings=tuple(warnings),
    )
