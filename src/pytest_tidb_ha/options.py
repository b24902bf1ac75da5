"""Resolved plugin options (pytest-free model; parsing lives beside it).

Precedence for every option: marker > CLI > env > ini > default.
The plugin stores one :class:`HAOptions` in ``config.stash[HA_OPTIONS_KEY]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from .scenario.model import Topology
from .shard import ShardSpec, parse_shard

#: The newest LTS in shared/reference/tidb-containers.md (v8.5.x line).
DEFAULT_TIDB_VERSION = "v8.5.7"
COMPONENTS = ("pd", "tikv", "tidb")
#: ``--ha-kill-mode``: what the ``kill`` fault ends. ``silent`` (the default): the node's
#: server process, under a supervisor that stays PID 1 (cluster/supervisor.py), with the
#: node's address silenced towards its peers for the window, as a deleted pod's is;
#: ``container``: the node's container (``docker start`` heals it); ``process``: only the
#: server process, the address still answering (as a Kubernetes container restart in its
#: pod). faults/silence.py says why the default is ``silent``.
KILL_MODES = ("silent", "container", "process")
DEFAULT_KILL_MODE: Final = "silent"
#: The kill modes whose containers run the sh supervisor as PID 1.
SUPERVISED_KILL_MODES = ("silent", "process")


def default_images(version: str) -> dict[str, str]:
    return {c: f"pingcap/{c}:{version}" for c in COMPONENTS}


def versioned_images(overrides: Mapping[str, str], version: str) -> dict[str, str]:
    """``--tidb-image`` values with ``{version}`` filled in (``mirror/tidb:{version}``), so an
    image override still follows the version a case or marker asks for."""
    return {c: image.replace("{version}", version) for c, image in overrides.items()}


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
    workload_driver: Literal["auto", "sysbench", "python"] = "auto"
    fault_helper_image: str | None = None  # None: nsenter from the host when root
    no_docker: Literal["fail", "skip"] = "fail"
    #: components whose image was set explicitly (--tidb-image); kept when a
    #: marker asks for another version
    image_overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    shard: ShardSpec | None = None  # --ha-shard K/N; None: run the whole selection
    docker_hosts: tuple[str, ...] = ()  # --ha-docker-hosts; empty: DOCKER_HOST / the default
    #: --ha-seed: every random choice of the faults; None until pytest_configure picks one
    seed: int | None = None
    seed_picked: bool = False  # True: no --ha-seed was given, the run picked ``seed``
    shrink: bool = False  # --ha-shrink: minimise the fault windows of a failing case
    #: --ha-stop-at-first-bad-run: a job entry's remaining ``times:`` runs are not submitted
    #: once one of its runs got a verdict that is not ok
    stop_at_first_bad_run: bool = False
    kill_mode: Literal["silent", "container", "process"] = DEFAULT_KILL_MODE  # --ha-kill-mode

    @property
    def attach(self) -> bool:
        return self.dsn is not None

    def images_for(self, version: str | None) -> Mapping[str, str]:
        """Images for a test whose marker/case asks for ``version`` (None: the session's).

        Precedence marker > CLI: the version comes from the marker, but an
        image set explicitly with ``--tidb-image`` is kept as given (its ``{version}``
        placeholder, if any, becomes the marker's version).
        """
        if version is None or version == self.tidb_version:
            return self.images
        return MappingProxyType(
            {**default_images(version), **versioned_images(self.image_overrides, version)})


# ---- parsing (pure; the plugin wraps errors into pytest.UsageError) ---------------------

ENV_PREFIX = "PYTEST_TIDB_HA_"


class OptionError(ValueError):
    """A bad option value; the message names the option and where it came from."""


@dataclass(frozen=True)
class OptionSpec:
    """One option in its three spellings (CLI, ini, env) plus help and default text."""

    dest: str  # ini name == argparse dest
    cli: str
    help: str
    default: str
    kind: Literal["str", "bool", "float", "list"] = "str"
    metavar: str | None = None

    @property
    def env(self) -> str:
        base = self.dest[3:] if self.dest.startswith("ha_") else self.dest
        return ENV_PREFIX + base.upper()


OPTION_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec("tidb_version", "--tidb-version",
               "TiDB version for the default images pingcap/{pd,tikv,tidb}:VERSION",
               DEFAULT_TIDB_VERSION, metavar="VERSION"),
    OptionSpec("tidb_image", "--tidb-image",
               "override one component's image, COMPONENT=IMAGE; {version} in IMAGE becomes "
               "the version (repeatable; env: comma list)",
               "pingcap/<component>:<version>", kind="list", metavar="COMPONENT=IMAGE"),
    OptionSpec("tidb_topology", "--tidb-topology",
               "minimum cluster size, e.g. pd=3,tikv=3,tidb=2 (each case may need more)",
               "what each case needs (at least 1/1/1)", metavar="pd=N,tikv=N,tidb=N"),
    OptionSpec("tidb_dsn", "--tidb-dsn",
               "use an existing cluster at mysql://user:pass@host:port instead of starting one",
               "start a cluster in Docker", metavar="DSN"),
    OptionSpec("tidb_pd_url", "--tidb-pd-url",
               "PD endpoint of the existing cluster (with --tidb-dsn), http://host:2379",
               "none", metavar="URL"),
    OptionSpec("ha_time_scale", "--ha-time-scale",
               "multiply every duration of a case by FACTOR (0.01: 30m -> 18s)", "1.0",
               kind="float", metavar="FACTOR"),
    OptionSpec("ha_dry_run", "--ha-dry-run",
               "print each case's plan (topology, fault windows, jobs) and start nothing",
               "off", kind="bool"),
    OptionSpec("ha_artifacts", "--ha-artifacts", "folder for per-test artifacts",
               "ha-artifacts", metavar="DIR"),
    OptionSpec("ha_artifacts_keep", "--ha-artifacts-keep",
               "keep artifacts of failed tests only, or of all tests", "failed",
               metavar="failed|all"),
    OptionSpec("ha_keep_cluster", "--ha-keep-cluster",
               "leave the cluster running after the session (for debugging)", "off",
               kind="bool"),
    OptionSpec("ha_workload_scale", "--ha-workload-scale",
               "multiply workload table sizes and generated import rows by FACTOR", "1.0",
               kind="float", metavar="FACTOR"),
    OptionSpec("ha_workload_driver", "--ha-workload-driver",
               "workload client: the sysbench binary when on PATH, else Python (auto); "
               "or force one", "auto", metavar="auto|sysbench|python"),
    OptionSpec("ha_fault_helper_image", "--ha-fault-helper-image",
               "image of the helper container that applies network faults (must exist "
               "locally: never pulled or built)",
               "nsenter from the host when root, else the plugin's own helper image "
               "(built from alpine when missing)", metavar="IMAGE"),
    OptionSpec("ha_no_docker", "--ha-no-docker",
               "what a cluster test does when no Docker engine answers", "fail",
               metavar="fail|skip"),
    OptionSpec("ha_shard", "--ha-shard",
               "run only shard K of N of the selected items (balanced by the planner's "
               "estimate, items of one cluster kept together)", "the whole selection",
               metavar="K/N"),
    OptionSpec("ha_seed", "--ha-seed",
               "seed of every random choice of the faults ((random)/(N%%) targets, random "
               "schedules, faultTypes mixes, partition shapes): the same seed replays the same "
               "choices", "a random seed, printed in the header", metavar="N"),
    OptionSpec("ha_shrink", "--ha-shrink",
               "when a YAML case fails, run it again with subsets of its fault windows "
               "(delta debugging) and write the smallest schedule that still fails as a case "
               "file into its artifacts", "off", kind="bool"),
    OptionSpec("ha_stop_at_first_bad_run", "--ha-stop-at-first-bad-run",
               "end a job entry's runs at its first verdict that is not ok (its remaining "
               "times: runs are not submitted): a bug reproduction needs only the run that "
               "shows the bug", "off (every run, as QA's harness does)", kind="bool"),
    OptionSpec("ha_kill_mode", "--ha-kill-mode",
               "what the kill fault ends. silent: the node's server process, under a small "
               "sh supervisor as the container's PID 1, and for the window the node's address "
               "goes silent to its peers, as a deleted pod's does (healed by lifting the "
               "silence and starting the process again: milliseconds; needs /bin/sh in the "
               "images); container: the node's container (healed by docker start); process: "
               "only the server process, the address still refusing connections, as when "
               "Kubernetes restarts a container in its pod", DEFAULT_KILL_MODE,
               metavar="silent|container|process"),
    OptionSpec("ha_docker_hosts", "--ha-docker-hosts",
               "Docker engines to spread clusters over, comma list of unix://, tcp:// or "
               "ssh:// URLs (each xdist worker uses one engine at a time)",
               "DOCKER_HOST or the default socket", metavar="URL,URL"),
)
SPECS_BY_DEST = {spec.dest: spec for spec in OPTION_SPECS}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def parse_topology(text: str) -> Topology:
    """``pd=3,tikv=3,tidb=2`` (any subset; the rest stay 1)."""
    counts: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in COMPONENTS:
            raise ValueError(f"{part!r} is not COMPONENT=N with COMPONENT in pd, tikv, tidb")
        if key in counts:
            raise ValueError(f"{key} given twice")
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"{key}={value!r}: not a whole number") from None
        if n < 1:
            raise ValueError(f"{key}={n}: at least 1")
        counts[key] = n
    if not counts:
        raise ValueError("empty topology (write e.g. pd=3,tikv=3,tidb=2)")
    return Topology(**counts)


def parse_image(text: str) -> tuple[str, str]:
    """``tidb=foo:1`` -> (``tidb``, ``foo:1``)."""
    component, sep, image = text.partition("=")
    component, image = component.strip(), image.strip()
    if not sep or component not in COMPONENTS or not image:
        raise ValueError(f"{text!r} is not COMPONENT=IMAGE with COMPONENT in pd, tikv, tidb")
    return component, image


DOCKER_SCHEMES = ("unix", "tcp", "ssh", "http", "https")


def parse_docker_hosts(text: str) -> tuple[str, ...]:
    """``unix:///run/a.sock,tcp://10.0.0.5:2375`` -> the URLs, checked, in order."""
    from urllib.parse import urlsplit

    urls: list[str] = []
    for part in text.split(","):
        url = part.strip()
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in DOCKER_SCHEMES:
            raise ValueError(f"{url!r}: not a Docker engine URL (schemes: "
                             f"{', '.join(s + '://' for s in DOCKER_SCHEMES)})")
        if parts.scheme == "unix":
            if not parts.path.startswith("/") or parts.netloc:
                raise ValueError(f"{url!r}: a unix socket URL is unix:///absolute/path")
        else:
            if not parts.hostname:
                raise ValueError(f"{url!r}: no host")
            try:
                parts.port  # noqa: B018 - validates the port
            except ValueError:
                raise ValueError(f"{url!r}: bad port") from None
        if url in urls:
            raise ValueError(f"{url!r} given twice")
        urls.append(url)
    if not urls:
        raise ValueError("no URL")
    return tuple(urls)


def _parse_dsn(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme != "mysql" or not parts.hostname:
        raise ValueError("not a DSN like mysql://root@127.0.0.1:4000")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ValueError("bad port") from None
    return text


def _parse_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a URL like http://127.0.0.1:2379")
    return text.rstrip("/")


def _parse_seed(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("not a whole number") from None
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("not a boolean (true/false, 1/0, yes/no, on/off)")


def _parse_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text
    return parse


def _non_empty(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text.strip():
            raise ValueError(f"empty {what}")
        return text.strip()
    return parse


def _path(text: str) -> Path:
    return Path(_non_empty("path")(text))


#: dest -> parser of the option's text (bool flags given on the CLI skip this).
_PARSERS: dict[str, Callable[[str], object]] = {
    "tidb_version": _non_empty("version"),
    "tidb_topology": parse_topology,
    "tidb_dsn": _parse_dsn,
    "tidb_pd_url": _parse_url,
    "ha_time_scale": _parse_scale,
    "ha_dry_run": _parse_bool,
    "ha_artifacts": _path,
    "ha_artifacts_keep": _choice("failed", "all"),
    "ha_keep_cluster": _parse_bool,
    "ha_workload_scale": _parse_scale,
    "ha_workload_driver": _choice("auto", "sysbench", "python"),
    "ha_fault_helper_image": _non_empty("image"),
    "ha_no_docker": _choice("fail", "skip"),
    "ha_shard": parse_shard,
    "ha_docker_hosts": parse_docker_hosts,
    "ha_seed": _parse_seed,
    "ha_shrink": _parse_bool,
    "ha_stop_at_first_bad_run": _parse_bool,
    "ha_kill_mode": _choice(*KILL_MODES),
}


def resolve_options(
    cli: Mapping[str, object | None],
    env: Mapping[str, str],
    ini: Mapping[str, object | None],
) -> HAOptions:
    """Resolve every option: CLI > env > ini > default (markers win later, per test).

    ``cli`` maps dest -> value (None/empty list when not given; booleans
    True when the flag was given); ``env`` is ``os.environ``; ``ini`` maps
    dest -> raw ini value. Empty strings count as unset in every layer.
    ``--tidb-image`` entries merge per component (ini, then env, then CLI). Every bad value raises
    :class:`OptionError` naming its source, e.g.
    ``env PYTEST_TIDB_HA_TIME_SCALE='x': not a number``.
    """
    values: dict[str, object] = {}
    for spec in OPTION_SPECS:
        if spec.kind == "list":
            continue
        candidates: list[tuple[str, object | None]] = [
            (spec.cli, cli.get(spec.dest)),
            (f"env {spec.env}", env.get(spec.env)),
            (f"ini {spec.dest}", ini.get(spec.dest)),
        ]
        for source, raw in candidates:
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue  # not set here (an empty env/ini value counts as unset)
            if raw is True:
                values[spec.dest] = True
                break
            text = str(raw)
            try:
                values[spec.dest] = _PARSERS[spec.dest](text)
            except ValueError as exc:
                raise OptionError(f"{source}={text!r}: {exc}") from None
            break
    overrides: dict[str, str] = {}
    env_images = env.get(SPECS_BY_DEST["tidb_image"].env)
    layers: list[tuple[str, list[str]]] = [
        ("ini tidb_image", [str(x) for x in (ini.get("tidb_image") or [])]),  # type: ignore[attr-defined]
        (f"env {SPECS_BY_DEST['tidb_image'].env}",
         [p for p in (env_images or "").split(",") if p.strip()]),
        ("--tidb-image", [str(x) for x in (cli.get("tidb_image") or [])]),  # type: ignore[attr-defined]
    ]
    for source, items in layers:
        for item in items:
            try:
                component, image = parse_image(item)
            except ValueError as exc:
                raise OptionError(f"{source}={item!r}: {exc}") from None
            overrides[component] = image
    version = str(values.get("tidb_version", DEFAULT_TIDB_VERSION))
    if values.get("tidb_pd_url") and not values.get("tidb_dsn"):
        raise OptionError("--tidb-pd-url needs --tidb-dsn (the PD of an existing cluster)")
    if values.get("ha_docker_hosts") and values.get("tidb_dsn"):
        raise OptionError("--ha-docker-hosts starts clusters on those engines; --tidb-dsn "
                          "attaches to an existing cluster: give one of them")
    images = {**default_images(version), **versioned_images(overrides, version)}
    return HAOptions(
        tidb_version=version,
        images=MappingProxyType(images),
        image_overrides=MappingProxyType(overrides),
        topology=values.get("tidb_topology"),  # type: ignore[arg-type]
        dsn=values.get("tidb_dsn"),  # type: ignore[arg-type]
        pd_url=values.get("tidb_pd_url"),  # type: ignore[arg-type]
        time_scale=float(values.get("ha_time_scale", 1.0)),  # type: ignore[arg-type]
        dry_run=bool(values.get("ha_dry_run", False)),
        artifacts=values.get("ha_artifacts", Path("ha-artifacts")),  # type: ignore[arg-type]
        artifacts_keep=values.get("ha_artifacts_keep", "failed"),  # type: ignore[arg-type]
        keep_cluster=bool(values.get("ha_keep_cluster", False)),
        workload_scale=float(values.get("ha_workload_scale", 1.0)),  # type: ignore[arg-type]
        workload_driver=values.get("ha_workload_driver", "auto"),  # type: ignore[arg-type]
        fault_helper_image=values.get("ha_fault_helper_image"),  # type: ignore[arg-type]
        no_docker=values.get("ha_no_docker", "fail"),  # type: ignore[arg-type]
        shard=values.get("ha_shard"),  # type: ignore[arg-type]
        docker_hosts=values.get("ha_docker_hosts", ()),  # type: ignore[arg-type]
        seed=values.get("ha_seed"),  # type: ignore[arg-type]
        shrink=bool(values.get("ha_shrink", False)),
        stop_at_first_bad_run=bool(values.get("ha_stop_at_first_bad_run", False)),
        kill_mode=values.get("ha_kill_mode", DEFAULT_KILL_MODE),  # type: ignore[arg-type]
    )


def with_seed(opts: HAOptions, inherited: int | None = None) -> HAOptions:
    """``opts`` with a seed: the one given, else ``inherited`` (an xdist worker gets the
    controller's), else a fresh random one (``seed_picked``: the header prints it)."""
    import dataclasses
    import random

    if opts.seed is not None:
        return opts
    if inherited is not None:
        return dataclasses.replace(opts, seed=inherited, seed_picked=True)
    return dataclasses.replace(opts, seed=random.SystemRandom().randrange(2**31),
                               seed_picked=True)
