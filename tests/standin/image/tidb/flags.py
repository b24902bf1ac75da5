"""tidb-server's command line, parsed like Go's ``flag`` package.

Go's ``flag`` accepts ``-name``/``--name``, ``=value`` or a separate value for
non-boolean flags, stops at the first non-flag argument, and exits 2 on an
unknown flag ("flag provided but not defined: -x"); tidb-server then refuses
leftover positional arguments. The stand-in must reject what the real server
rejects, so the plugin cannot pass flags that would break on real TiDB.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

# name -> (default, is_bool). Names from pingcap/tidb cmd/tidb-server/main.go initFlagSet.
_FLAGS: dict[str, tuple[str, bool]] = {
    "V": ("false", True),
    "config": ("", False),
    "config-check": ("false", True),
    "config-strict": ("false", True),
    "store": ("unistore", False),
    "path": ("/tmp/tidb", False),
    "host": ("0.0.0.0", False),
    "advertise-address": ("", False),
    "P": ("4000", False),
    "cors": ("", False),
    "socket": ("/tmp/tidb-4000.sock", False),
    "enable-binlog": ("false", True),
    "run-ddl": ("true", True),
    "lease": ("45s", False),
    "token-limit": ("1000", False),
    "temp-dir": ("/tmp/tidb", False),
    "plugin-dir": ("/data/deploy/plugin", False),
    "plugin-load": ("", False),
    "affinity-cpus": ("", False),
    "repair-mode": ("false", True),
    "repair-list": ("", False),
    "require-secure-transport": ("false", True),
    "proxy-protocol-networks": ("", False),
    "proxy-protocol-header-timeout": ("5", False),
    "proxy-protocol-fallbackable": ("false", True),
    "initialize-secure": ("false", True),
    "initialize-insecure": ("true", True),
    "initialize-sql-file": ("", False),
    "disconnect-on-expired-password": ("true", True),
    "keyspace-name": ("", False),
    "tidb-service-scope": ("", False),
    "L": ("info", False),
    "log-file": ("", False),
    "log-slow-query": ("", False),
    "log-general": ("", False),
    "report-status": ("true", True),
    "status": ("10080", False),
    "status-host": ("0.0.0.0", False),
    "metrics-addr": ("", False),
    "metrics-interval": ("15", False),
    "binlog-socket": ("", False),
    "tmp-storage-path": ("", False),
    "redact": ("false", True),
}


class FlagError(Exception):
    """A command line the real tidb-server would refuse (exit code 2)."""


@dataclass(frozen=True)
class TiDBFlags:
    store: str
    path: str
    host: str
    advertise_address: str
    port: int
    status_port: int
    status_host: str
    log_file: str
    config: str
    temp_dir: str
    lease: str
    run_ddl: bool
    print_version: bool


def parse(argv: list[str]) -> TiDBFlags:
    """Parse ``argv`` (without the program name) or raise FlagError."""
    values = {name: default for name, (default, _b) in _FLAGS.items()}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            break
        if arg == "--":
            i += 1
            break
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body.startswith("-") or body.startswith("="):
            raise FlagError(f"bad flag syntax: {arg}")
        name, eq, value = body.partition("=")
        if name not in _FLAGS:
            raise FlagError(f"flag provided but not defined: -{name}")
        is_bool = _FLAGS[name][1]
        if is_bool:
            if eq:
                low = value.lower()
                if low in ("1", "t", "true"):
                    value = "true"
                elif low in ("0", "f", "false"):
                    value = "false"
                else:
                    raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error')
            else:
                value = "true"
        elif not eq:
            if i + 1 >= len(argv):
                raise FlagError(f"flag needs an argument: -{name}")
            i += 1
            value = argv[i]
        values[name] = value
        i += 1
    rest = argv[i:]
    if rest:
        raise FlagError(f"The following args cannot be recognized: {rest!r}")
    for name in ("P", "status"):
        try:
            int(values[name])
        except ValueError:
            raise FlagError(
                f'invalid value "{values[name]}" for flag -{name}: parse error'
            ) from None
    if values["store"] not in ("unistore", "tikv", "mocktikv"):
        raise FlagError(f"invalid store type {values['store']}")
    return TiDBFlags(
        store=values["store"],
        path=values["path"],
        host=values["host"],
        advertise_address=values["advertise-address"],
        port=int(values["P"]),
        status_port=int(values["status"]),
        status_host=values["status-host"],
        log_file=values["log-file"],
        config=values["config"],
        temp_dir=values["temp-dir"],
        lease=values["lease"],
        run_ddl=values["run-ddl"] == "true",
        print_version=values["V"] == "true",
    )


def parse_or_exit(argv: list[str]) -> TiDBFlags:
    try:
        return parse(argv)
    except FlagError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(2) from None
