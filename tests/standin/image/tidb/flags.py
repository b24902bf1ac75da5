"""tidb-server's command line and ``--config`` (Go ``flag`` syntax): the flag specs, the
config keys TiDB knows, `parse_tidb` (pure, like the shared parsers in ``common.flags``),
and `TiDBFlags`, the part of the result the role uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.flags import (
    FlagExit,
    FlagSpec,
    goflag_usage,
    load_config,
    lookup,
    parse_duration,
    parse_goflag,
    split_list,
    version_text,
)

TIDB_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("V", "bool", False, "print version information and exit"),
    FlagSpec("config", "string", "", "config file path"),
    FlagSpec("config-check", "bool", False, "check config file validity and exit"),
    FlagSpec("config-strict", "bool", False, "enforce config file validity"),
    FlagSpec("store", "string", "unistore", "registered store name, [tikv, mocktikv, unistore]"),
    FlagSpec("path", "string", "/tmp/tidb", "tidb storage path"),  # noqa: S108 - tidb-server's defaults
    FlagSpec("host", "string", "0.0.0.0", "tidb server host"),  # noqa: S104
    FlagSpec("advertise-address", "string", "", "tidb server advertise IP"),
    FlagSpec("P", "string", "4000", "tidb server port"),
    FlagSpec("cors", "string", "", "tidb server allow cors origin"),
    FlagSpec("socket", "string", "/tmp/tidb-{Port}.sock", "The socket file to use for connection."),  # noqa: S108
    FlagSpec("enable-binlog", "bool", False, "enable generate binlog"),
    FlagSpec("run-ddl", "bool", True, "run ddl worker on this tidb-server"),
    FlagSpec("lease", "string", "45s", "schema lease duration, very dangerous to change only if you know what you do"),
    FlagSpec("token-limit", "int", 1000, "the limit of concurrent executed sessions"),
    FlagSpec("plugin-dir", "string", "/data/deploy/plugin", "the folder that hold plugin"),
    FlagSpec("plugin-load", "string", "", "wait load plugin name(separated by comma)"),
    FlagSpec("affinity-cpus", "string", "", "affinity cpu (cpu-no. separated by comma, e.g. 1,2,3)"),
    FlagSpec("repair-mode", "bool", False, "enable admin repair mode"),
    FlagSpec("repair-list", "string", "", "admin repair table list"),
    FlagSpec("temp-dir", "string", "/tmp/tidb", "tidb temporary directory"),  # noqa: S108
    FlagSpec("L", "string", "info", "log level: info, debug, warn, error, fatal"),
    FlagSpec("log-file", "string", "", "log file path"),
    FlagSpec("log-slow-query", "string", "", "slow query file path"),
    FlagSpec("log-general", "string", "", "general log file path"),
    FlagSpec("report-status", "bool", True, "If enable status report HTTP service."),
    FlagSpec("status-host", "string", "0.0.0.0", "tidb server status host"),  # noqa: S104
    FlagSpec("status", "string", "10080", "tidb server status port"),
    FlagSpec("metrics-addr", "string", "", "prometheus pushgateway address, leaves it empty will disable prometheus push."),
    FlagSpec("metrics-interval", "uint", 15, 'prometheus client push interval in second, set "0" to disable prometheus push.'),
    FlagSpec("proxy-protocol-networks", "string", "", "proxy protocol networks allowed IP or *, empty mean disable proxy protocol support"),
    FlagSpec("proxy-protocol-header-timeout", "uint", 5, "proxy protocol header read timeout, unit is second. (Deprecated: as proxy protocol using lazy mode, header read timeout no longer used)"),
    FlagSpec("proxy-protocol-fallbackable", "bool", False, "enable proxy protocol fallback mode"),
    FlagSpec("require-secure-transport", "bool", False, "require client use secure transport"),
    FlagSpec("initialize-secure", "bool", False, "bootstrap tidb-server in secure mode"),
    FlagSpec("initialize-insecure", "bool", True, "bootstrap tidb-server in insecure mode"),
    FlagSpec("initialize-sql-file", "string", "", "SQL file to execute on first bootstrap"),
    FlagSpec("disconnect-on-expired-password", "bool", True, "the server disconnects the client when the password is expired"),
    FlagSpec("keyspace-name", "string", "", "keyspace name."),
    FlagSpec("tidb-service-scope", "string", "", "tidb service scope"),
    FlagSpec("help", "bool", False, "show the usage"),
)

TIDB_KNOWN_SCALARS = frozenset({
    "host", "advertise-address", "port", "cors", "store", "path", "socket", "lease", "run-ddl",
    "split-table", "token-limit", "temp-dir", "tmp-storage-path", "tmp-storage-quota", "oom-action",
    "oom-use-tmp-storage", "mem-quota-query", "server-memory-quota", "enable-streaming",
    "enable-batch-dml", "lower-case-table-names", "compatible-kill-query", "check-mb4-value-in-utf8",
    "treat-old-version-utf8-as-utf8mb4", "max-index-length", "index-limit", "table-column-count-limit",
    "graceful-wait-before-shutdown", "alter-primary-key", "new_collations_enabled_on_first_bootstrap",
    "server-version", "repair-mode", "repair-table-list", "max-server-connections", "keyspace-name",
    "enable-global-index", "enable-table-lock", "delay-clean-table-lock", "split-region-max-num",
    "deprecate-integer-display-length", "enable-enum-length-limit", "stores-refresh-interval",
    "enable-tcp4-only", "enable-forwarding", "max-ballast-object-size", "ballast-object-size",
    "enable-32bits-connection-id", "skip-register-to-dashboard", "enable-telemetry", "labels",
    "initialize-sql-file", "enable-global-kill", "disaggregated-tiflash", "is-tiflashcompute-fallback-to-tikv",
    "tiflash-compute-auto-scaler-type", "tiflash-compute-auto-scaler-addr", "autoscaler-cluster-id",
    "use-autoscaler", "transaction-summary", "in-mem-slow-query-topn-num", "in-mem-slow-query-recent-num",
    "enable-dynamic-config", "enable-status-report", "metrics-addr", "metrics-interval",
    "disconnect-on-expired-password",
})


@dataclass(frozen=True)
class TidbConfig:
    """Effective tidb-server configuration (what the TiDB role starts from)."""

    store: str
    path: str
    pd_endpoints: tuple[str, ...]  # from `path` when store == tikv ("pd0:2379,..." -> list)
    host: str
    advertise_address: str  # "" = let the role pick the container IP (util.GetLocalIP)
    port: int
    status_host: str
    status_port: int
    report_status: bool
    lease: float  # seconds (unscaled); <= 0 replaced by 45s as current TiDB does
    run_ddl: bool
    temp_dir: str
    log_file: str
    log_level: str
    config_file: str
    initialize_sql_file: str
    initialize_insecure: bool
    keyspace_name: str
    tidb_service_scope: str
    token_limit: int
    config: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _tidb_section_tables(config: Mapping[str, Any]) -> list[str]:
    return [k for k, v in config.items() if not isinstance(v, Mapping) and k not in TIDB_KNOWN_SCALARS]


def parse_tidb(argv: Sequence[str], prog: str = "/tidb-server") -> TidbConfig:
    parsed = parse_goflag(prog, argv, TIDB_FLAGS)
    if parsed.get("help"):
        raise FlagExit(0, goflag_usage(prog, TIDB_FLAGS))
    if parsed.get("V"):
        raise FlagExit(0, stdout=version_text("TiDB"))
    config, warnings = load_config(
        parsed,
        _tidb_section_tables,
        unreadable=lambda exc: FlagExit(1, f"config check failed\n{exc}\n"),
        unknown_message=lambda unknown: (
            f"config file {parsed.get('config')} contained invalid configuration options: {', '.join(unknown)}"
        ),
        strict=bool(parsed.get("config-check") or parsed.get("config-strict")),
        reject=lambda message: FlagExit(1, f"{message}\n"),
    )
    if parsed.get("config-check"):
        raise FlagExit(0, stdout="config check successful\n")

    def pick(flag: str, key: str) -> Any:
        if parsed.given(flag):
            return parsed.get(flag)
        value = lookup(config, key)
        return parsed.get(flag) if value is None else value

    def as_int(what: str, raw: Any) -> int:
        try:
            value = int(str(raw))
        except ValueError:
            raise FlagExit(1, f'panic: strconv.Atoi: parsing "{raw}": invalid syntax ({what})\n') from None
        if not 0 <= value <= 65535:
            raise FlagExit(1, f"invalid {what}: {value}\n")
        return value

    store = str(pick("store", "store"))
    path = str(pick("path", "path"))
    lease_raw = str(pick("lease", "lease"))
    try:
        lease = parse_duration(lease_raw)
    except ValueError:
        raise FlagExit(1, f'panic: time: invalid duration "{lease_raw}"\n') from None
    if lease <= 0:
        warnings.append(f"lease {lease_raw} is not positive, use the default 45s")
        lease = 45.0
    pd_endpoints: tuple[str, ...] = ()
    if store == "tikv":
        trimmed = path.split("?", 1)[0]
        if "://" in trimmed:
            trimmed = trimmed.split("://", 1)[1]
        pd_endpoints = tuple(split_list(trimmed))
    run_ddl = pick("run-ddl", "run-ddl")
    report_status = pick("report-status", "status.report-status")
    return TidbConfig(
        store=store,
        path=path,
        pd_endpoints=pd_endpoints,
        host=str(pick("host", "host")),
        advertise_address=str(pick("advertise-address", "advertise-address") or ""),
        port=as_int("port", pick("P", "port")),
        status_host=str(pick("status-host", "status.status-host")),
        status_port=as_int("status port", pick("status", "status.status-port")),
        report_status=bool(report_status),
        lease=lease,
        run_ddl=bool(run_ddl),
        temp_dir=str(pick("temp-dir", "temp-dir")),
        log_file=str(pick("log-file", "log.file.filename") or ""),
        log_level=str(pick("L", "log.level") or "info"),
        config_file=str(parsed.get("config")),
        initialize_sql_file=str(pick("initialize-sql-file", "initialize-sql-file") or ""),
        initialize_insecure=bool(parsed.get("initialize-insecure")),
        keyspace_name=str(pick("keyspace-name", "keyspace-name") or ""),
        tidb_service_scope=str(pick("tidb-service-scope", "instance.tidb_service_scope") or ""),
        token_limit=int(pick("token-limit", "token-limit")),
        config=config,
        warnings=tuple(warnings),
    )


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
