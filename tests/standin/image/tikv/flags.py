"""tikv-server's command line and ``--config`` (clap syntax): the flag specs, the config
keys TiKV knows, and `parse_tikv`, pure like the shared parsers in ``common.flags``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.flags import (
    FlagExit,
    FlagSpec,
    load_config,
    lookup,
    parse_clap,
    parse_size,
    pick_value,
    split_list,
    unknown_top_level,
    version_text,
)

TIKV_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("config-check", "bool", False, "Check config file validity and exit"),
    FlagSpec("config-info", "string", "", "Print configuration information with specified format"),
    FlagSpec("config", "string", "", "Set the configuration file", short="C", metavar="FILE"),
    FlagSpec("log-level", "string", "", "Set the log level", short="L", metavar="LEVEL"),
    FlagSpec("log-file", "string", "", "Sets log file", short="f", metavar="FILE"),
    FlagSpec("addr", "string", "", "Set the listening address", short="A", metavar="IP:PORT"),
    FlagSpec("advertise-addr", "string", "", "Set the advertise listening address for client communication", metavar="IP:PORT"),
    FlagSpec("status-addr", "string", "", "Set the HTTP listening address for the status report service", metavar="IP:PORT"),
    FlagSpec("advertise-status-addr", "string", "", "Set the advertise listening address for the client communication of status report service", metavar="IP:PORT"),
    FlagSpec("data-dir", "string", "", "Set the directory used to store data", short="s", aliases=("store",), metavar="PATH"),
    FlagSpec("capacity", "string", "", "Set the store capacity", metavar="CAPACITY"),
    FlagSpec("pd-endpoints", "string", "", "Sets PD endpoints", aliases=("pd", "pd-endpoint"), metavar="PD_URL"),
    FlagSpec("labels", "string", "", "Sets server labels", metavar="KEY=VALUE"),
    FlagSpec("print-sample-config", "bool", False, "Print a sample config to stdout"),
    FlagSpec("metrics-addr", "string", "", "Sets Prometheus Pushgateway address", metavar="IP:PORT"),
)

TIKV_KNOWN_CONFIG = frozenset({
    "log-level", "log-file", "log-format", "log-rotation-timespan", "log-rotation-size", "slow-log-file",
    "slow-log-threshold", "abort-on-panic", "memory-usage-limit", "memory-usage-high-water",
    "panic-when-unexpected-key-or-data", "enable-io-snoop", "log", "readpool", "server", "storage",
    "pd", "metric", "raftstore", "coprocessor", "coprocessor-v2", "rocksdb", "raftdb", "raft-engine",
    "security", "import", "backup", "backup-stream", "pessimistic-txn", "gc", "split", "cdc",
    "resolved-ts", "resource-metering", "causal-ts", "quota", "resource-control", "memory",
    "in-memory-engine", "log-backup", "raft-store", "rocksdb-engine", "storage-engine", "flow-control",
})


@dataclass(frozen=True)
class TikvConfig:
    """Effective tikv-server configuration."""

    addr: str
    advertise_addr: str
    status_addr: str
    advertise_status_addr: str
    data_dir: str
    pd_endpoints: tuple[str, ...]
    capacity: int  # bytes, 0 = unlimited
    labels: Mapping[str, str]
    config_file: str
    log_file: str
    log_level: str
    config: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


_UNSPECIFIED = ("0.0.0.0", "::", "[::]", "")  # noqa: S104 - addresses TiKV refuses to advertise


def _tikv_fatal(message: str) -> FlagExit:
    # TiKV's `fatal!` logs at FATAL and exits 1.
    from common.log import quote, timestamp

    return FlagExit(1, f"[{timestamp()}] [FATAL] [lib.rs:497] [{quote(message)}]\n")


def _check_addr(what: str, addr: str) -> None:
    _host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise _tikv_fatal(f"invalid configuration: invalid {what}: {addr!r}")


def parse_tikv(argv: Sequence[str]) -> TikvConfig:
    parsed = parse_clap("tikv-server", argv, TIKV_FLAGS, version_text("TiKV"))
    if parsed.get("print-sample-config"):
        raise FlagExit(0, stdout="# TiKV sample configuration (stand-in)\n[server]\naddr = \"127.0.0.1:20160\"\n")
    config, warnings = load_config(
        parsed,
        lambda c: unknown_top_level(c, TIKV_KNOWN_CONFIG),
        unreadable=lambda exc: _tikv_fatal(f"invalid configuration file {parsed.get('config')!r}: {exc}"),
        unknown_message=lambda unknown: f"Unrecognized keys: {', '.join(unknown)}",
        strict=bool(parsed.get("config-check")),
        reject=lambda message: _tikv_fatal(f"invalid configuration file: {message}"),
    )

    def pick(flag: str, key: str, default: str) -> str:
        return str(pick_value(parsed, config, flag, key, default))

    addr = pick("addr", "server.addr", "127.0.0.1:20160")
    advertise = pick("advertise-addr", "server.advertise-addr", "") or addr
    status = pick("status-addr", "server.status-addr", "127.0.0.1:20180")
    advertise_status = pick("advertise-status-addr", "server.advertise-status-addr", "") or status
    _check_addr("addr", addr)
    _check_addr("advertise-addr", advertise)
    if advertise.rpartition(":")[0] in _UNSPECIFIED:
        raise _tikv_fatal(f"invalid configuration: invalid advertise-addr: {advertise!r}")
    if status:
        _check_addr("status-addr", status)
    data_dir = pick("data-dir", "storage.data-dir", "./")
    if parsed.given("pd-endpoints"):
        endpoints = split_list(str(parsed.get("pd-endpoints")))
    else:
        raw_endpoints = lookup(config, "pd.endpoints", [])
        endpoints = list(raw_endpoints) if isinstance(raw_endpoints, list) else split_list(str(raw_endpoints))
    if not endpoints:
        raise _tikv_fatal("invalid configuration: please specify pd.endpoints.")
    try:
        capacity = parse_size(pick("capacity", "raftstore.capacity", "0"))
    except ValueError as exc:
        raise _tikv_fatal(f"invalid configuration: {exc}") from exc
    labels: dict[str, str] = {}
    raw_labels = parsed.get("labels") if parsed.given("labels") else lookup(config, "server.labels", {})
    if isinstance(raw_labels, Mapping):
        labels = {str(k): str(v) for k, v in raw_labels.items()}
    else:
        for item in split_list(str(raw_labels)):
            key, sep, value = item.partition("=")
            if not sep or not key or not value:
                raise _tikv_fatal(f"invalid configuration: invalid label: {item!r}")
            labels[key.strip()] = value.strip()
    level = pick("log-level", "log.level", "") or str(lookup(config, "log-level", "info") or "info")
    log_file = pick("log-file", "log.file.filename", "") or str(lookup(config, "log-file", "") or "")
    if parsed.get("config-check"):
        raise FlagExit(0, stdout="config check successful\n")
    return TikvConfig(
        addr=addr,
        advertise_addr=advertise,
        status_addr=status,
        advertise_status_addr=advertise_status,
        data_dir=data_dir,
        pd_endpoints=tuple(endpoints),
        capacity=capacity,
        labels=labels,
        config_file=parsed.get("config"),
        log_file=log_file,
        log_level=level,
        config=config,
        warnings=tuple(warnings),
    )
