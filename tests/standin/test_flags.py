"""Flag parsing of the three stand-in servers: what the real ones accept or reject.

In-process tests drive the pure parsers (``image/{pd,tikv,tidb}/flags.py`` on the shared
``image/common/flags.py``); the Docker tests run
the image's real entry points (``/pd-server``, ``/tikv-server``, ``/tidb-server``) and check
the exit code and message of a rejected flag, and that the reference command lines of
tidb-docker-compose start a working PD + TiKV.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from common import flags
from common.flags import FlagExit
from pd.flags import parse_pd
from standin_helpers import StandinNet, wait_for
from tidb.flags import parse_tidb
from tikv.flags import parse_tikv

# ---- reference command lines (tidb-containers.md §1.5, verbatim) -----------------------------
COMPOSE_PD0 = (
    "--name=pd0 --client-urls=http://0.0.0.0:2379 --peer-urls=http://0.0.0.0:2380 "
    "--advertise-client-urls=http://pd0:2379 --advertise-peer-urls=http://pd0:2380 "
    "--initial-cluster=pd0=http://pd0:2380,pd1=http://pd1:2380,pd2=http://pd2:2380 "
    "--data-dir=/data/pd0 --config=/pd.toml --log-file=/logs/pd0.log"
)
COMPOSE_TIKV0 = (
    "--addr=0.0.0.0:20160 --advertise-addr=tikv0:20160 --data-dir=/data/tikv0 "
    "--pd=pd0:2379,pd1:2379,pd2:2379 --config=/tikv.toml --log-file=/logs/tikv0.log"
)
COMPOSE_TIDB = (
    "--store=tikv --path=pd0:2379,pd1:2379,pd2:2379 --config=/tidb.toml --log-file=/logs/tidb.log "
    "--advertise-address=tidb"
)
NIGHTLY_PD0 = (
    "--name=pd0 --client-urls=http://0.0.0.0:2379 --peer-urls=http://0.0.0.0:2380 "
    "--advertise-client-urls=http://pd0:2379 --advertise-peer-urls=http://pd0:2380 "
    "--initial-cluster=pd0=http://pd0:2380 --data-dir=/data/pd --config=/pd.toml --log-file=/logs/pd.log"
)
NIGHTLY_TIKV = (
    "--addr=0.0.0.0:20160 --advertise-addr=tikv:20160 --status-addr=tikv:20180 --data-dir=/data/tikv "
    "--pd=pd0:2379 --log-file=/logs/tikv.log"
)
NIGHTLY_TIDB = "--status=10080 --advertise-address=tidb --store=tikv --path=pd0:2379 --log-file=/logs/tidb.log"
OPERATOR_TIKV = (
    "--pd=basic-pd:2379 --advertise-addr=basic-tikv-0.basic-tikv-peer:20160 --addr=0.0.0.0:20160 "
    "--status-addr=0.0.0.0:20180 --data-dir=/var/lib/tikv --capacity=0 --config=/etc/tikv/tikv.toml "
    "--advertise-status-addr=basic-tikv-0.basic-tikv-peer:20180"
)
TIUP_PD = (
    "--name=pd-0 --config=/tmp/p/pd.toml --data-dir=/tmp/p/data --peer-urls=http://127.0.0.1:2380 "
    "--advertise-peer-urls=http://127.0.0.1:2380 --client-urls=http://127.0.0.1:2379 "
    "--advertise-client-urls=http://127.0.0.1:2379 --log-file=/tmp/p/pd.log "
    "--initial-cluster=pd-0=http://127.0.0.1:2380"
)
TIUP_TIKV = (
    "--addr=127.0.0.1:20160 --advertise-addr=127.0.0.1:20160 --status-addr=127.0.0.1:20180 "
    "--pd-endpoints=http://127.0.0.1:2379 --config=/tmp/t/tikv.toml --data-dir=/tmp/t/data --log-file=/tmp/t/tikv.log"
)
TIUP_TIDB = (
    "-P 4000 --store=tikv --host=127.0.0.1 --status=10080 --path=127.0.0.1:2379 "
    "--log-file=/tmp/d/tidb.log --config=/tmp/d/tidb.toml"
)

# Configs as tidb-docker-compose ships them (trimmed to what matters; old keys included).
SAMPLE_CONFIGS: dict[str, dict[str, Any]] = {
    "pd": {"lease": 3, "tso-save-interval": "3s", "replication": {"max-replicas": 3},
           "log": {"level": "info"}, "schedule": {"max-store-down-time": "30m"}},
    "tikv": {"rocksdb": {"max-open-files": 1024}, "raftdb": {"max-open-files": 1024},
             "storage": {"reserve-space": "0MB"}, "log-level": "info"},
    "tidb": {"store": "mocktikv", "lease": "0", "split-table": True,
             "status": {"report-status": True, "status-port": 10080}, "log": {"level": "info"},
             "performance": {"tcp-keep-alive": True}},
}


@pytest.fixture
def fake_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any --config path reads the sample of its component (the paths do not exist here)."""

    def load(path: str) -> dict[str, Any]:
        for component in ("tikv", "tidb", "pd"):
            if component in Path(path).name:
                return SAMPLE_CONFIGS[component]
        raise AssertionError(f"unexpected config path {path}")

    monkeypatch.setattr(flags, "load_toml", load)


def fails(parser: Callable[[list[str]], Any], argv: list[str]) -> FlagExit:
    with pytest.raises(FlagExit) as info:
        parser(argv)
    return info.value


# ---- pd-server -----------------------------------------------------------------------
@pytest.mark.parametrize("line", [COMPOSE_PD0, NIGHTLY_PD0, TIUP_PD])
def test_pd_accepts_reference_command_lines(line: str, fake_configs: None) -> None:
    cfg = parse_pd(line.split())
    assert cfg.name in ("pd0", "pd-0")
    assert cfg.client_urls
    assert cfg.advertise_peer_urls
    assert cfg.initial_cluster
    assert cfg.max_store_down_time == 1800


def test_pd_flag_syntax_like_pflag() -> None:
    a = parse_pd(["--name", "x", "-L", "debug", "--data-dir=/d", "--force-new-cluster"])
    b = parse_pd(["--name=x", "-Ldebug", "--data-dir", "/d", "--force-new-cluster=true"])
    assert a == b
    assert (a.name, a.log_level, a.data_dir, a.force_new_cluster) == ("x", "debug", "/d", True)
    defaults = parse_pd([], hostname="h1")
    assert (defaults.name, defaults.data_dir) == ("pd-h1", "default.pd-h1")
    assert defaults.client_urls == ("http://127.0.0.1:2379",)


@pytest.mark.parametrize(("argv", "message"), [
    (["--foo"], "Error: unknown flag: --foo"),
    (["--foo=1"], "Error: unknown flag: --foo"),
    (["-x"], "Error: unknown shorthand flag: 'x' in -x"),
    (["--name"], "Error: flag needs an argument: --name"),
    (["--force-new-cluster=maybe"], 'Error: invalid argument "maybe" for "--force-new-cluster" flag'),
    (["stray"], "Error: 'stray' is an invalid flag"),
    (["--client-urls=pd0:2379"], "URL address does not have the form"),
])
def test_pd_rejects_like_cobra(argv: list[str], message: str) -> None:
    exc = fails(parse_pd, argv)
    assert exc.code == 1
    assert exc.stderr.startswith(message) or message in exc.stderr


def test_pd_config_file_values_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "pd.toml"
    good.write_text('name = "from-file"\n[schedule]\nmax-store-down-time = "1m"\n[log.file]\nfilename = "/l/pd.log"\n')
    cfg = parse_pd([f"--config={good}"])
    assert (cfg.name, cfg.max_store_down_time, cfg.log_file) == ("from-file", 60.0, "/l/pd.log")
    assert parse_pd([f"--config={good}", "--name=flag-wins"]).name == "flag-wins"
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("no-such-item = 1\n")
    assert parse_pd([f"--config={unknown}"]).warnings
    assert fails(parse_pd, [f"--config={unknown}", "--config-check"]).code == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[schedule]\nmax-store-down-time = "soon"\n')
    assert fails(parse_pd, [f"--config={bad}"]).code == 1
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    assert fails(parse_pd, [f"--config={broken}"]).code == 1
    assert fails(parse_pd, ["--config=/nonexistent/pd.toml"]).code == 1
    assert fails(parse_pd, ["-V"]).code == 0


# ---- tikv-server -----------------------------------------------------------------------
@pytest.mark.parametrize("line", [COMPOSE_TIKV0, NIGHTLY_TIKV, OPERATOR_TIKV, TIUP_TIKV])
def test_tikv_accepts_reference_command_lines(line: str, fake_configs: None) -> None:
    cfg = parse_tikv(line.split())
    assert cfg.pd_endpoints
    assert cfg.advertise_addr.endswith(":20160")
    assert not cfg.advertise_addr.startswith("0.0.0.0")  # noqa: S104 - the value checked against


def test_tikv_aliases_and_short_flags() -> None:
    forms = [
        ["--pd", "pd0:2379", "--advertise-addr", "t:20160", "-s", "/d"],
        ["--pd-endpoint=pd0:2379", "--advertise-addr=t:20160", "--store=/d"],
        ["--pd-endpoints", "pd0:2379", "--advertise-addr=t:20160", "--data-dir", "/d"],
        ["--pd=pd0:2379", "-A", "t:20160", "-s/d"],
    ]
    parsed = [parse_tikv(f) for f in forms]
    assert {(p.pd_endpoints, p.advertise_addr, p.data_dir) for p in parsed} == {(("pd0:2379",), "t:20160", "/d")}
    cfg = parse_tikv(["--pd=a:1,b:2", "-A", "0.0.0.0:20160", "--advertise-addr=t:20160",
                            "-L", "warn", "-f", "/l/t.log", "--labels=zone=z1,host=h1", "--capacity=10GB"])
    assert cfg.pd_endpoints == ("a:1", "b:2")
    assert cfg.addr == "0.0.0.0:20160"
    assert (cfg.log_level, cfg.log_file) == ("warn", "/l/t.log")
    assert dict(cfg.labels) == {"zone": "z1", "host": "h1"}
    assert cfg.capacity == 10 * 1024**3


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--foo"], 2, "error: unexpected argument '--foo' found"),
    (["-Z"], 2, "error: unexpected argument '-Z' found"),
    (["stray"], 2, "error: unexpected argument 'stray' found"),
    (["--addr"], 2, "error: a value is required for '--addr <IP:PORT>'"),
    (["--pd=a:1", "--pd=b:1"], 2, "cannot be used multiple times"),
    (["--pd=pd0:2379", "--addr=0.0.0.0:20160"], 1, "invalid advertise-addr"),
    (["--pd=pd0:2379", "--advertise-addr=0.0.0.0:20160"], 1, "invalid advertise-addr"),
    (["--addr=127.0.0.1:20160"], 1, "please specify pd.endpoints"),
])
def test_tikv_rejects_like_clap_and_validate(argv: list[str], code: int, message: str) -> None:
    exc = fails(parse_tikv, argv)
    assert exc.code == code
    assert message in exc.stderr
    if code == 2:
        assert "Usage: tikv-server [OPTIONS]" in exc.stderr


def test_tikv_config_file(tmp_path: Path) -> None:
    path = tmp_path / "tikv.toml"
    path.write_text('[server]\naddr = "0.0.0.0:20160"\nadvertise-addr = "t:20160"\n[pd]\nendpoints = ["p:2379"]\n'
                    '[storage]\ndata-dir = "/d"\n[rocksdb]\nmax-open-files = 1024\n')
    cfg = parse_tikv([f"-C{path}"])
    assert (cfg.addr, cfg.advertise_addr, cfg.pd_endpoints, cfg.data_dir) == ("0.0.0.0:20160", "t:20160", ("p:2379",), "/d")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    assert fails(parse_tikv, [f"--config={bad}", "--pd=p:1"]).code == 1


# ---- tidb-server -----------------------------------------------------------------------
@pytest.mark.parametrize("line", [COMPOSE_TIDB, NIGHTLY_TIDB, TIUP_TIDB])
def test_tidb_accepts_reference_command_lines(line: str, fake_configs: None) -> None:
    cfg = parse_tidb(line.split())
    assert cfg.store == "tikv"
    assert cfg.pd_endpoints
    assert cfg.lease == 45.0  # lease "0" in the old compose config falls back to 45s


def test_tidb_go_flag_syntax() -> None:
    forms = [["-P", "4001", "-store", "tikv", "-path", "p:2379"],
             ["--P=4001", "--store=tikv", "--path=p:2379"],
             ["-P=4001", "--store", "tikv", "-path=p:2379"]]
    parsed = {(c.port, c.store, c.pd_endpoints) for c in map(parse_tidb, forms)}
    assert parsed == {(4001, "tikv", ("p:2379",))}
    cfg = parse_tidb(["-run-ddl=false", "--status=10081", "-L", "warn", "--lease=1s"])
    assert (cfg.run_ddl, cfg.status_port, cfg.log_level, cfg.lease) == (False, 10081, "warn", 1.0)
    assert parse_tidb(["--store=tikv", "--path=http://a:2379,b:2379"]).pd_endpoints == ("a:2379", "b:2379")


@pytest.mark.parametrize(("argv", "message"), [
    (["-foo"], "flag provided but not defined: -foo"),
    (["--foo=bar"], "flag provided but not defined: -foo"),
    (["-P"], "flag needs an argument: -P"),
    (["-run-ddl=maybe"], 'invalid boolean value "maybe" for flag -run-ddl: parse error'),
    (["---P=1"], "bad flag syntax: ---P=1"),
])
def test_tidb_rejects_like_go_flag(argv: list[str], message: str) -> None:
    exc = fails(parse_tidb, argv)
    assert exc.code == 2
    assert exc.stderr.startswith(message)
    assert "Usage of /tidb-server:" in exc.stderr


def test_tidb_config_file(tmp_path: Path) -> None:
    path = tmp_path / "tidb.toml"
    path.write_text('port = 4100\nstore = "tikv"\npath = "p:2379"\n[status]\nstatus-port = 10100\n'
                    '[instance]\ntidb_service_scope = "bg"\n')
    cfg = parse_tidb([f"--config={path}"])
    assert (cfg.port, cfg.status_port, cfg.store, cfg.tidb_service_scope) == (4100, 10100, "tikv", "bg")
    assert parse_tidb([f"--config={path}", "-P", "4000"]).port == 4000
    strict = tmp_path / "strict.toml"
    strict.write_text("no-such-knob = 1\n")
    assert parse_tidb([f"--config={strict}"]).warnings
    assert fails(parse_tidb, [f"--config={strict}", "-config-strict"]).code == 1
    assert fails(parse_tidb, ["-V"]).code == 0


# ---- the real entry points in the image (Docker) -----------------------------------------
@pytest.mark.docker
@pytest.mark.parametrize(("component", "argv", "code", "message"), [
    ("pd", ["--foo"], 1, "Error: unknown flag: --foo"),
    ("tikv", ["--foo"], 2, "error: unexpected argument '--foo' found"),
    ("tikv", ["--pd=pd0:2379", "--addr=0.0.0.0:20160"], 1, "invalid advertise-addr"),
    ("tidb", ["-foo"], 2, "flag provided but not defined: -foo"),
])
def test_entry_points_reject_unknown_flags(standin: StandinNet, component: str, argv: list[str],
                                           code: int, message: str) -> None:
    exit_code, _out, err = standin.oneshot(component, argv, timeout=30)
    assert exit_code == code, err
    assert message in err


@pytest.mark.docker
def test_compose_command_lines_start_pd_and_tikv(standin: StandinNet, tmp_path: Path) -> None:
    """tidb-docker-compose's nightly lines, verbatim, with its /pd.toml mounted."""
    pd_toml = tmp_path / "pd.toml"
    pd_toml.write_text("[replication]\nmax-replicas = 1\n[schedule]\nmax-store-down-time = \"30m\"\n")
    standin.run("pd0", "pd", NIGHTLY_PD0.split(), env={"STANDIN_TIME_SCALE": "0.05"},
                volumes={str(pd_toml): {"bind": "/pd.toml", "mode": "ro"}})
    standin.run("tikv", "tikv", NIGHTLY_TIKV.split(), env={"STANDIN_TIME_SCALE": "0.05"})

    def store_up() -> bool:
        status, body = standin.pd_get("pd0", "/stores", timeout=3)
        return status == 200 and body["count"] == 1 and body["stores"][0]["store"]["state_name"] == "Up"

    wait_for("the compose TiKV Up in PD", store_up, timeout=60, story=standin.story)
    status, body = standin.pd_get("pd0", "/cluster/status")
    assert status == 200
    assert body["is_initialized"] is True
    code, out = standin.container("pd0").exec_run(["cat", "/logs/pd.log"])
    assert code == 0
    assert b"Welcome to Placement Driver" in out
    code, out = standin.container("tikv").exec_run(["cat", "/logs/tikv.log"])
    assert code == 0
    assert b"TiKV is ready to serve" in out
    assert b"TiKV is ready to serve" in standin.containers["tikv"].logs()  # and still on stderr
    started = time.monotonic()
    standin.container("tikv").stop(timeout=10)  # SIGTERM: a clean, prompt exit
    assert time.monotonic() - started < 8
    assert standin.container("tikv").attrs["State"]["ExitCode"] == 0
