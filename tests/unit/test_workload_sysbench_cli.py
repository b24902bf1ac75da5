"""The sysbench binary's command line and output parser, and the driver choice (pure)."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.workload import sysbench_cli as cli
from pytest_tidb_ha.workload.driver import DriverUnavailable, choose
from pytest_tidb_ha.workload.errors import IgnorePolicy
from pytest_tidb_ha.workload.target import Target

# real sysbench 1.0.20 output (oltp_read_write against MariaDB, --report-interval=1)
REPORT = ("[ 3s ] thds: 8 tps: 197.54 qps: 4787.85 (r/w/o: 3488.88/854.01/444.96) "
          "lat (ms,99%): 123.28 err/s: 51.88 reconn/s: 0.00")
FATAL_QUERY = ("FATAL: mysql_stmt_execute() returned error 1213 (Deadlock found when trying "
               "to get lock; try restarting transaction) for query 'UPDATE sbtest1 SET c=? "
               "WHERE id=?'")
FATAL_CONNECT = "FATAL: error 2002: Can't connect to server on '127.0.0.1' (115)"

TWO = Target((("127.0.0.1", 4001), ("127.0.0.1", 4002)), user="qa", password="pw")


def run(**kw: object) -> cli.Run:
    base: dict[str, object] = {"db": "sbtest", "subtype": "oltp_read_write", "tables": 4,
                               "table_size": 1000, "threads": 8,
                               "ignore": IgnorePolicy.of("1213,9007")}
    base.update(kw)
    return cli.Run(**base)


def test_report_line_is_parsed() -> None:
    r = cli.parse_line(REPORT + "\n")
    assert r == cli.Report(3.0, 8, 197.54, 4787.85, 3488.88, 854.01, 444.96, 99, 123.28,
                           51.88, 0.0)


def test_other_lines() -> None:
    assert cli.parse_line("tidb-ha: error 9007 Write conflict, txnStartTS=1\n") == \
        cli.IgnoredError(9007, "Write conflict, txnStartTS=1")
    assert cli.parse_line(FATAL_QUERY) == cli.Fatal(
        1213, "Deadlock found when trying to get lock; try restarting transaction")
    assert cli.parse_line(FATAL_CONNECT) == cli.Fatal(
        2002, "Can't connect to server on '127.0.0.1' (115)")
    assert cli.parse_line("FATAL: Thread initialization failed!") == \
        cli.Fatal(None, "Thread initialization failed!")
    assert cli.parse_line("Threads started!\n") == cli.Started()
    for noise in ("", "Initializing worker threads...", "[ 1s ] queue length: 0, concurrency: 0",
                  "(last message repeated 3 times)", "tidb-ha: error x y"):
        assert cli.parse_line(noise) is None


def test_first_error_prefers_a_fatal_with_a_code() -> None:
    fatals = [cli.Fatal(None, "unable to connect"), cli.Fatal(2002, "refused")]
    assert cli.first_error(fatals) == fatals[1]
    assert cli.first_error(fatals[:1]) == fatals[0]
    assert cli.first_error([]) is None


def test_a_report_becomes_a_sample() -> None:
    r = cli.parse_line(REPORT)
    assert isinstance(r, cli.Report)
    s = cli.sample(r, 12.5, 1.0, {1213: 50, 9007: 2})
    assert (s.second, s.transactions, s.queries, dict(s.errors)) == \
        (12.5, 198, 4788, {1213: 50, 9007: 2})
    assert (s.p50, s.p95, s.p99) == (None, None, 123.28)
    idle = cli.Report(4.0, 8, 0.0, 0.0, 0, 0, 0, 99, 0.0, 0.0, 0.0)
    assert cli.sample(idle, 13.5, 1.0, {}).p99 is None  # nothing committed: no latency


def test_command_line_names_every_tidb_and_the_case() -> None:
    cmd = cli.command("/usr/bin/sysbench", "/tmp/x/w.lua", "/tmp/x/pw.cfg",
                      run(seed=7, ps_mode="disable"), TWO)
    assert cmd[:3] == ["/usr/bin/sysbench", "/tmp/x/w.lua", "--config-file=/tmp/x/pw.cfg"]
    assert cmd[-1] == "run"
    for arg in ("--mysql-host=127.0.0.1", "--mysql-port=4001,4002", "--mysql-user=qa",
                "--mysql-db=sbtest", "--tables=4", "--table-size=1000", "--threads=8",
                "--mysql-ignore-errors=1213,9007", "--db-ps-mode=disable",
                "--report-interval=1", "--percentile=99", "--time=0", "--rand-seed=7"):
        assert arg in cmd
    assert not any(a == "pw" or "password" in a for a in cmd)
    assert not any(a.startswith("--rand-type") for a in cmd)  # sysbench's default, as QA
    assert "--rand-type=uniform" in cli.command("s", "w", None, run(rand_type="uniform"), TWO)


def test_ignore_errors_all_list_and_none() -> None:
    assert cli.ignore_errors_arg(IgnorePolicy.of("all")) == "all"
    assert cli.ignore_errors_arg(IgnorePolicy.of([1213, 8028])) == "1213,8028"
    assert cli.ignore_errors_arg(IgnorePolicy.of(())) == ""  # sysbench: nothing ignored


def test_hosts_and_ports_must_form_the_endpoints() -> None:
    assert TWO.host_port_lists() == (["127.0.0.1"], [4001, 4002])
    same_port = Target((("10.0.0.2", 4000), ("10.0.0.3", 4000)))
    assert same_port.host_port_lists() == (["10.0.0.2", "10.0.0.3"], [4000])
    mixed = Target((("10.0.0.2", 4000), ("10.0.0.3", 4001)))
    assert mixed.host_port_lists() is None
    with pytest.raises(ValueError, match="cannot name"):
        cli.command("s", "w", None, run(), mixed)
    assert "pw" not in repr(TWO)


def test_password_goes_to_a_config_file_quoted() -> None:
    assert cli.config_text("") == ""
    assert cli.config_text("a,b c") == 'mysql-password="a,b c"\n'
    assert cli.config_text('say "hi"') == "mysql-password='say \"hi\"'\n"
    with pytest.raises(ValueError, match="quote"):
        cli.config_text("both ' and \"")


def test_wrapper_requires_sysbenchs_own_script() -> None:
    text = cli.wrapper_script("oltp_write_only")
    assert 'require("oltp_write_only")' in text
    assert "before_restart_event" in text
    assert cli.ERROR_PREFIX in text
    with pytest.raises(ValueError, match="no script"):
        cli.wrapper_script("tpcc")


def test_version() -> None:
    assert cli.parse_version("sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)\n") == "1.0.20"
    assert cli.parse_version("nonsense") is None


def which(found: bool) -> object:
    return lambda name: f"/usr/bin/{name}" if found else None


def test_auto_takes_the_binary_when_it_can() -> None:
    c = choose("auto", "oltp_read_write", TWO, which(True))
    assert c.driver == "sysbench"
    assert "on PATH" in c.reason


@pytest.mark.parametrize(("found", "subtype", "target", "why"), [
    (False, "oltp_read_write", TWO, "not on PATH"),
    (True, "oltp_point_select", TWO, "not one of sysbench's scripts"),
    (True, "oltp_read_write", None, "no endpoints"),
    (True, "oltp_read_write", Target((("a", 1), ("b", 2))), "pairs every"),
])
def test_auto_falls_back_to_python_and_says_why(found: bool, subtype: str,
                                                 target: Target | None, why: str) -> None:
    c = choose("auto", subtype, target, which(found))
    assert c.driver == "python"
    assert why in c.reason
    with pytest.raises(DriverUnavailable, match=why):
        choose("sysbench", subtype, target, which(found))


def test_python_when_asked_and_bad_names_rejected() -> None:
    assert choose("python", "oltp_read_write", TWO, which(True)).driver == "python"
    with pytest.raises(ValueError, match="expected one of auto, sysbench, python"):
        choose("go", "oltp_read_write", TWO)


def test_a_password_sysbench_cannot_carry_means_python() -> None:
    odd = Target((("127.0.0.1", 4000),), password="both ' and \"")
    assert choose("auto", "oltp_read_write", odd, which(True)).driver == "python"
