"""Command-line and config-file parsing that behaves like the real servers.

The plugin (and its users' fixtures) start the stand-in with the real components' command
lines, so the parsers must accept what pd-server (cobra/pflag), tikv-server (clap) and
tidb-server (Go `flag`) accept and reject what they reject, with the same message shape
and exit code:

    pd-server   --foo  -> stderr "Error: unknown flag: --foo" + usage, exit 1
    tikv-server --foo  -> stderr "error: unexpected argument '--foo' found" ..., exit 2
    tidb-server -foo   -> stderr "flag provided but not defined: -foo" + usage, exit 2

The component parsers built on these (`pd.flags.parse_pd`, `tikv.flags.parse_tikv`,
`tidb.flags.parse_tidb`) are pure: they return a frozen config or raise
`FlagExit` (carrying exit code, stdout and stderr); `parse_or_exit` does the I/O.
`--config` TOML files are read with tomllib; command-line flags win over the file, as in
the real servers.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import tomllib

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
def goflag_usage(prog: str, specs: Sequence[FlagSpec]) -> str:
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
    usage = goflag_usage(prog, specs)

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
            config: dict[str, Any] = tomllib.load(fh)
            return config
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


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# --------------------------------------------------------------------------------------
def version_text(component: str) -> str:
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
