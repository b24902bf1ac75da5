"""Command-line and config-file parsing that behaves like the real servers.

The plugin (and its users' fixtures) start the stand-in with the real components' command
lines, so the parsers must accept what pd-server (cobra/pflag), tikv-server (clap) and
tidb-server (Go `flag`) accept and reject what they reject, with the same message shape
and exit code:

    pd-server   --foo  -> stderr "Error: unknown flag: --foo" + usage, exit 1
    tikv-server --foo  -> stderr "error: unexpected argument '--foo' found" ..., exit 2
    tidb-server -foo   -> stderr "flag provided but not defined: -foo" + usage, exit 2

`parse_pd/parse_tikv/parse_tidb(argv)` are pure: they return a frozen config or raise
`FlagExit` (carrying exit code, stdout and stderr); `parse_or_exit` does the I/O.
`--config` TOML files are read with tomllib; command-line flags win over the file, as in
the real servers.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.versions import release_version


class FlagExit(Exception):
    """Parsing ended the process: error (code != 0) or --help/--version (code 0)."""

    def __init__(self, code: int, stderr: str = "", stdout: str = "") -> None:
        super().__init__(stderr or stdout)
        self.code = code
        self.stderr = stderr
        self.stdout = stdout


@dataclass(frozen=True)
class FlagSpec:
    name: str
    kind: str = "string"  # string | bool | int | uint
    default: Any = ""
    help: str = ""
    short: str = ""
    aliases: tuple[str, ...] = ()
    metavar: str = ""


# --------------------------------------------------------------------------------------
# Durations and sizes (Go / TiKV syntax)
# --------------------------------------------------------------------------------------
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Go-style duration (`1h30m`, `45s`, `300ms`) -> seconds; raises ValueError."""
    value = str(text).strip()
    if value in ("0", ""):
        return 0.0
    sign = -1.0 if value.startswith("-") else 1.0
    value = value.lstrip("+-")
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """TiKV ReadableSize (`10GB`, `512MiB`, `0`) -> bytes; raises ValueError."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"invalid size: {text!r}")
    number, unit = float(match.group(1)), (match.group(2) or "B").upper().rstrip("B").rstrip("I")
    power = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}[unit]
    return int(number * (1024**power))


# --------------------------------------------------------------------------------------
# Generic parsers
# --------------------------------------------------------------------------------------
def _truthy(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise ValueError(text)


def _go_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)


def _convert(spec: FlagSpec, raw: str) -> Any:
    if spec.kind == "bool":
        return _go_bool(raw)
    if spec.kind in ("int", "uint"):
        value = int(raw, 0)
        if spec.kind == "uint" and value < 0:
            raise ValueError(raw)
        return value
    return raw


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    explicit: set[str] = field(default_factory=set)
    positional: list[str] = field(default_factory=list)

    def get(self, name: str) -> Any:
        return self.values[name]

    def given(self, name: str) -> bool:
        return name in self.explicit


def _defaults(specs: Sequence[FlagSpec]) -> Parsed:
    return Parsed(values={s.name: s.default for s in specs})


# ---- pflag (pd-server, cobra) ----------------------------------------------------------
def _pflag_usage(prog: str, specs: Sequence[FlagSpec]) -> str:
    lines = ["Usage:", f"  {prog} [flags]", "", "Flags:"]
    for s in specs:
        short = f"-{s.short}, " if s.short else "    "
        kind = "" if s.kind == "bool" else f" {s.kind}"
        default = f' (default "{s.default}")' if s.kind == "string" and s.default else ""
        lines.append(f"  {short}--{s.name}{kind}\t{s.help}{default}")
    lines.append(f"  -h, --help\thelp for {prog}")
    return "\n".join(lines) + "\n"


def parse_pflag(prog: str, argv: Sequence[str], specs: Sequence[FlagSpec]) -> Parsed:
    """POSIX/GNU flags as spf13/pflag parses them; errors exit 1 like cobra's Execute."""
    by_long = {s.name: s for s in specs}
    by_short = {s.short: s for s in specs if s.short}
    out = _defaults(specs)
    usage = _pflag_usage(prog, specs)

    def fail(message: str) -> FlagExit:
        return FlagExit(1, f"Error: {message}\n{usage}\n")

    def set_value(spec: FlagSpec, raw: str, shown: str) -> None:
        try:
            out.values[spec.name] = _convert(spec, raw)
        except ValueError as exc:
            if spec.kind == "bool":
                detail = f'strconv.ParseBool: parsing "{raw}": invalid syntax'
            else:
                detail = f'strconv.ParseInt: parsing "{raw}": invalid syntax'
            raise fail(f'invalid argument "{raw}" for "{shown}" flag: {detail}') from exc
        out.explicit.add(spec.name)

    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out.positional.extend(args[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name == "help":
                raise FlagExit(0, stdout=usage)
            spec = by_long.get(name)
            if spec is None:
                raise fail(f"unknown flag: --{name}")
            shown = f"--{name}"
            if eq:
                set_value(spec, value, shown)
            elif spec.kind == "bool":
                set_value(spec, "true", shown)
            elif i < len(args):
                set_value(spec, args[i], shown)
                i += 1
            else:
                raise fail(f"flag needs an argument: --{name}")
        elif arg.startswith("-") and len(arg) > 1:
            shorts = arg[1:]
            j = 0
            while j < len(shorts):
                ch = shorts[j]
                if ch == "h":
                    raise FlagExit(0, stdout=usage)
                spec = by_short.get(ch)
                if spec is None:
                    raise fail(f"unknown shorthand flag: '{ch}' in -{shorts}")
                rest = shorts[j + 1 :]
                shown = f"-{ch}, --{spec.name}"
                if spec.kind == "bool":
                    if rest.startswith("="):
                        set_value(spec, rest[1:], shown)
                        break
                    set_value(spec, "true", shown)
                    j += 1
                    continue
                if rest:
                    set_value(spec, rest[1:] if rest.startswith("=") else rest, shown)
                elif i < len(args):
                    set_value(spec, args[i], shown)
                    i += 1
                else:
                    raise fail(f"flag needs an argument: '{ch}' in -{shorts}")
                break
        else:
            out.positional.append(arg)
    return out


# ---- clap (tikv-server) ----------------------------------------------------------------
_CLAP_TAIL = "\nUsage: {prog} [OPTIONS]\n\nFor more information, try '--help'.\n"


def _clap_usage(prog: str, specs: Sequence[FlagSpec]) -> str:
    lines = [f"Usage: {prog} [OPTIONS]", "", "Options:"]
    for s in specs:
        short = f"-{s.short}, " if s.short else "    "
        meta = "" if s.kind == "bool" else f" <{s.metavar or s.name.upper()}>"
        lines.append(f"  {short}--{s.name}{meta}  {s.help}")
    lines += ["  -h, --help  Print help", "  -V, --version  Print version"]
    return "\n".join(lines) + "\n"


def parse_clap(prog: str, argv: Sequence[str], specs: Sequence[FlagSpec], version: str) -> Parsed:
    """Options as clap 4 parses them; errors exit 2 with clap's wording."""
    by_long: dict[str, FlagSpec] = {}
    for s in specs:
        by_long[s.name] = s
        for alias in s.aliases:
            by_long[alias] = s
    by_short = {s.short: s for s in specs if s.short}
    out = _defaults(specs)
    tail = _CLAP_TAIL.format(prog=prog)

    def shown(spec: FlagSpec) -> str:
        meta = "" if spec.kind == "bool" else f" <{spec.metavar or spec.name.upper()}>"
        return f"--{spec.name}{meta}"

    def fail(message: str) -> FlagExit:
        return FlagExit(2, f"error: {message}\n{tail}")

    def set_value(spec: FlagSpec, raw: str) -> None:
        if spec.name in out.explicit and spec.kind != "bool":
            raise fail(f"the argument '{shown(spec)}' cannot be used multiple times")
        if spec.kind != "bool" and raw == "":
            raise fail(f"a value is required for '{shown(spec)}' but none was supplied")
        out.values[spec.name] = True if spec.kind == "bool" else raw
        out.explicit.add(spec.name)

    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            if i < len(args):
                raise fail(f"unexpected argument '{args[i]}' found")
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name == "help":
                raise FlagExit(0, stdout=_clap_usage(prog, specs))
            if name == "version":
                raise FlagExit(0, stdout=version)
            spec = by_long.get(name)
            if spec is None:
                raise fail(f"unexpected argument '--{name}' found")
            if spec.kind == "bool":
                if eq:
                    raise fail(f"unexpected value '{value}' for '--{spec.name}' found; no more were expected")
                set_value(spec, "")
            elif eq:
                set_value(spec, value)
            elif i < len(args) and not (args[i].startswith("-") and len(args[i]) > 1):
                set_value(spec, args[i])
                i += 1
            else:
                raise fail(f"a value is required for '{shown(spec)}' but none was supplied")
        elif arg.startswith("-") and len(arg) > 1:
            ch, rest = arg[1], arg[2:]
            if ch == "h":
                raise FlagExit(0, stdout=_clap_usage(prog, specs))
            if ch == "V":
                raise FlagExit(0, stdout=version)
            spec = by_short.get(ch)
            if spec is None:
                raise fail(f"unexpected argument '-{ch}' found")
            if spec.kind == "bool":
                if rest:
                    raise fail(f"unexpected argument '-{rest[0]}' found")
                set_value(spec, "")
            elif rest:
                set_value(spec, rest[1:] if rest.startswith("=") else rest)
            elif i < len(args) and not (args[i].startswith("-") and len(args[i]) > 1):
                set_value(spec, args[i])
                i += 1
            else:
                raise fail(f"a value is required for '{shown(spec)}' but none was supplied")
        else:
            raise fail(f"unexpected argument '{arg}' found")
    return out


# ---- Go flag (tidb-server) -------------------------------------------------------------
def _goflag_usage(prog: str, specs: Sequence[FlagSpec]) -> str:
    lines = [f"Usage of {prog}:"]
    for s in sorted(specs, key=lambda s: s.name):
        kind = "" if s.kind == "bool" else f" {s.kind}"
        lines.append(f"  -{s.name}{kind}")
        default = ""
        if s.kind == "bool" and s.default:
            default = " (default true)"
        elif s.kind == "string" and s.default:
            default = f' (default "{s.default}")'
        elif s.kind in ("int", "uint") and s.default:
            default = f" (default {s.default})"
        lines.append(f"    \t{s.help}{default}")
    return "\n".join(lines) + "\n"


def parse_goflag(prog: str, argv: Sequence[str], specs: Sequence[FlagSpec]) -> Parsed:
    """Go's `flag` package with ExitOnError: stops at the first non-flag, errors exit 2."""
    by_name = {s.name: s for s in specs}
    out = _defaults(specs)
    usage = _goflag_usage(prog, specs)

    def fail(message: str) -> FlagExit:
        return FlagExit(2, f"{message}\n{usage}")

    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if len(arg) < 2 or not arg.startswith("-"):
            break
        i += 1
        body = arg[1:]
        if body.startswith("-"):
            body = body[1:]
            if body == "":  # "--" terminates
                break
        if body == "" or body.startswith("-") or body.startswith("="):
            raise fail(f"bad flag syntax: {arg}")
        name, eq, value = body.partition("=")
        spec = by_name.get(name)
        if spec is None:
            if name in ("help", "h"):
                raise FlagExit(0, usage)
            raise fail(f"flag provided but not defined: -{name}")
        if spec.kind == "bool":
            raw = value if eq else "true"
        elif eq:
            raw = value
        elif i < len(args):
            raw = args[i]
            i += 1
        else:
            raise fail(f"flag needs an argument: -{name}")
        try:
            out.values[name] = _convert(spec, raw)
        except ValueError:
            raise fail(f'invalid {"boolean " if spec.kind == "bool" else ""}value "{raw}" for flag -{name}: parse error') from None
        out.explicit.add(name)
    out.positional.extend(args[i:])
    return out


# --------------------------------------------------------------------------------------
# TOML config files
# --------------------------------------------------------------------------------------
def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML config; a missing or malformed file raises ValueError with the reason."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ValueError(f"open {path}: no such file or directory") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"toml: {exc}") from exc
    except OSError as exc:
        raise ValueError(f"open {path}: {exc.strerror}") from exc


def lookup(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """`lookup(cfg, "log.file.filename")` -> value or `default`."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def unknown_top_level(config: Mapping[str, Any], known: frozenset[str]) -> list[str]:
    """Top-level keys (scalars or sections) the server does not know."""
    return sorted(k for k in config if k not in known)


def load_config(
    parsed: Parsed,
    unknown_keys: Callable[[Mapping[str, Any]], list[str]],
    *,
    unreadable: Callable[[ValueError], FlagExit],
    unknown_message: Callable[[list[str]], str],
    strict: bool,
    reject: Callable[[str], FlagExit],
) -> tuple[dict[str, Any], list[str]]:
    """``--config``'s TOML and the warnings it earns: ``({}, [])`` when no file is named.

    All three servers follow the same steps (read the file or exit, list the keys they do
    not know, then exit when ``strict`` or else carry on with a warning); only the upstream
    wording differs, so each caller passes its own messages.
    """
    if not parsed.get("config"):
        return {}, []
    try:
        config = load_toml(parsed.get("config"))
    except ValueError as exc:
        raise unreadable(exc) from exc
    unknown = unknown_keys(config)
    if not unknown:
        return config, []
    message = unknown_message(unknown)
    if strict:
        raise reject(message)
    return config, [message]


def pick_value(parsed: Parsed, config: Mapping[str, Any], flag: str, key: str, default: Any) -> Any:
    """A flag given on the command line, else the config file's value, else ``default``.

    An empty config value counts as unset (PD and TiKV both treat ``""`` as "use default").
    """
    if parsed.given(flag):
        return parsed.get(flag)
    value = lookup(config, key)
    return default if value in (None, "") else value


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# --------------------------------------------------------------------------------------
# pd-server
# --------------------------------------------------------------------------------------
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
        raise FlagExit(0, stdout=_version_text("PD"))
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
    client_urls = _split_list(str(pick("client-urls", "client-urls", "http://127.0.0.1:2379")))
    peer_urls = _split_list(str(pick("peer-urls", "peer-urls", "http://127.0.0.1:2380")))
    adv_client = _split_list(str(pick("advertise-client-urls", "advertise-client-urls", ""))) or client_urls
    adv_peer = _split_list(str(pick("advertise-peer-urls", "advertise-peer-urls", ""))) or peer_urls
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


# --------------------------------------------------------------------------------------
# tikv-server
# --------------------------------------------------------------------------------------
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


_UNSPECIFIED = ("0.0.0.0", "::", "[::]", "")


def _tikv_fatal(message: str) -> FlagExit:
    # TiKV's `fatal!` logs at FATAL and exits 1.
    from common.log import quote, timestamp

    return FlagExit(1, f"[{timestamp()}] [FATAL] [lib.rs:497] [{quote(message)}]\n")


def _check_addr(what: str, addr: str) -> None:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise _tikv_fatal(f"invalid configuration: invalid {what}: {addr!r}")


def parse_tikv(argv: Sequence[str]) -> TikvConfig:
    parsed = parse_clap("tikv-server", argv, TIKV_FLAGS, _version_text("TiKV"))
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
        endpoints = _split_list(str(parsed.get("pd-endpoints")))
    else:
        raw_endpoints = lookup(config, "pd.endpoints", [])
        endpoints = list(raw_endpoints) if isinstance(raw_endpoints, list) else _split_list(str(raw_endpoints))
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
        for item in _split_list(str(raw_labels)):
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


# --------------------------------------------------------------------------------------
# tidb-server
# --------------------------------------------------------------------------------------
TIDB_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("V", "bool", False, "print version information and exit"),
    FlagSpec("config", "string", "", "config file path"),
    FlagSpec("config-check", "bool", False, "check config file validity and exit"),
    FlagSpec("config-strict", "bool", False, "enforce config file validity"),
    FlagSpec("store", "string", "unistore", "registered store name, [tikv, mocktikv, unistore]"),
    FlagSpec("path", "string", "/tmp/tidb", "tidb storage path"),
    FlagSpec("host", "string", "0.0.0.0", "tidb server host"),
    FlagSpec("advertise-address", "string", "", "tidb server advertise IP"),
    FlagSpec("P", "string", "4000", "tidb server port"),
    FlagSpec("cors", "string", "", "tidb server allow cors origin"),
    FlagSpec("socket", "string", "/tmp/tidb-{Port}.sock", "The socket file to use for connection."),
    FlagSpec("enable-binlog", "bool", False, "enable generate binlog"),
    FlagSpec("run-ddl", "bool", True, "run ddl worker on this tidb-server"),
    FlagSpec("lease", "string", "45s", "schema lease duration, very dangerous to change only if you know what you do"),
    FlagSpec("token-limit", "int", 1000, "the limit of concurrent executed sessions"),
    FlagSpec("plugin-dir", "string", "/data/deploy/plugin", "the folder that hold plugin"),
    FlagSpec("plugin-load", "string", "", "wait load plugin name(separated by comma)"),
    FlagSpec("affinity-cpus", "string", "", "affinity cpu (cpu-no. separated by comma, e.g. 1,2,3)"),
    FlagSpec("repair-mode", "bool", False, "enable admin repair mode"),
    FlagSpec("repair-list", "string", "", "admin repair table list"),
    FlagSpec("temp-dir", "string", "/tmp/tidb", "tidb temporary directory"),
    FlagSpec("L", "string", "info", "log level: info, debug, warn, error, fatal"),
    FlagSpec("log-file", "string", "", "log file path"),
    FlagSpec("log-slow-query", "string", "", "slow query file path"),
    FlagSpec("log-general", "string", "", "general log file path"),
    FlagSpec("report-status", "bool", True, "If enable status report HTTP service."),
    FlagSpec("status-host", "string", "0.0.0.0", "tidb server status host"),
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
        raise FlagExit(0, _goflag_usage(prog, TIDB_FLAGS))
    if parsed.get("V"):
        raise FlagExit(0, stdout=_version_text("TiDB"))
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
        pd_endpoints = tuple(_split_list(trimmed))
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


# --------------------------------------------------------------------------------------
def _version_text(component: str) -> str:
    version = release_version()
    if component == "TiDB":
        return (
            f"Release Version: {version}\nEdition: Community\nGit Commit Hash: standin\n"
            "Git Branch: standin\nUTC Build Time: 2023-12-01 00:00:00\n"
            "Store: tikv\n"
        )
    return f"{component}\nRelease Version: {version}\nEdition: Community\nGit Commit Hash: standin\n"


def parse_or_exit(parser: Callable[[Sequence[str]], Any], argv: Sequence[str]) -> Any:
    """Run `parser`; on `FlagExit` write its output like the real server and exit."""
    try:
        return parser(argv)
    except FlagExit as done:
        if done.stdout:
            sys.stdout.write(done.stdout)
            sys.stdout.flush()
        if done.stderr:
            sys.stderr.write(done.stderr)
            sys.stderr.flush()
        raise SystemExit(done.code) from None
