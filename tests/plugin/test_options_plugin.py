"""Options through pytest: group, ini/env/CLI precedence, errors naming the source."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.stash import HA_OPTIONS_KEY

PROBE = """
    from pytest_tidb_ha.stash import ha_options

    def test_probe(request):
        o = ha_options(request.config)
        print(f"\\nPROBE scale={o.time_scale} version={o.tidb_version} tidb={o.images['tidb']}"
              f" dry={o.dry_run} keep={o.artifacts_keep}")
"""


def probe(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest("-s", "-q", *args)
    result.assert_outcomes(passed=1)
    (line,) = [ln for ln in result.stdout.lines if ln.startswith("PROBE")]
    return line


def test_help_shows_the_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "TiDB HA regression tests (pytest-tidb-ha):",
        "*--tidb-version=VERSION*",
        "*--ha-time-scale=FACTOR*",
        "*--ha-dry-run*",
    ])


def test_precedence_cli_over_env_over_ini(pytester: pytest.Pytester,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("""
        [pytest]
        ha_time_scale = 0.3
        tidb_version = v7.5.0
        ha_artifacts_keep = all
        tidb_image =
            tidb=ini/tidb:1
    """)
    assert probe(pytester) == ("PROBE scale=0.3 version=v7.5.0 tidb=ini/tidb:1 dry=False "
                               "keep=all")
    monkeypatch.setenv("PYTEST_TIDB_HA_TIME_SCALE", "0.2")
    monkeypatch.setenv("PYTEST_TIDB_HA_TIDB_IMAGE", "tidb=env/tidb:1")
    assert probe(pytester).startswith("PROBE scale=0.2 version=v7.5.0 tidb=env/tidb:1")
    line = probe(pytester, "--ha-time-scale", "0.1", "--tidb-image", "tidb=cli/tidb:1",
                 "--tidb-version", "v8.1.0")
    assert line.startswith("PROBE scale=0.1 version=v8.1.0 tidb=cli/tidb:1")


def test_bad_env_value_is_a_usage_error_naming_it(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_TIDB_HA_TIME_SCALE", "x")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-tidb-ha: env PYTEST_TIDB_HA_TIME_SCALE='x': "
                                 "not a number*"])


def test_bad_ini_and_cli_values(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nha_no_docker = ignore\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini ha_no_docker='ignore': must be one of fail, skip*"])
    result = pytester.runpytest("--tidb-topology", "pd=three", "-o", "ha_no_docker=skip")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tidb-topology='pd=three': pd='three': not a whole number*"])


def test_options_are_in_the_config_stash(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure("--ha-dry-run", "--ha-workload-scale", "0.5")
    opts = config.stash[HA_OPTIONS_KEY]
    assert opts.dry_run
    assert opts.workload_scale == 0.5


def test_report_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--ha-time-scale", "0.01", "--ha-dry-run")
    result.stdout.fnmatch_lines(["tidb-ha: TiDB v8.5.7, images *, time scale 0.01, fault seed * (picked for this run; --ha-seed * replays it) (dry run)"])


def test_kill_mode_errors_are_usage_errors_before_anything_starts(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_x(tidb_cluster): pass")  # would start a cluster
    result = pytester.runpytest("--ha-kill-mode", "pod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ha-kill-mode='pod': must be one of silent, container, process*"])
    result.stdout.no_fnmatch_line("*tidb_cluster*")  # no test ran, so no cluster either
    pytester.makeini("[pytest]\nha_kill_mode = restart\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini ha_kill_mode='restart': must be one of silent, "
                                 "container, process*"])
    monkeypatch.setenv("PYTEST_TIDB_HA_KILL_MODE", "")  # empty: unset, the ini decides
    result = pytester.runpytest("--ha-kill-mode=process", "--ha-dry-run")
    assert result.ret == pytest.ExitCode.OK  # the CLI wins over the bad ini value


def test_kill_mode_reaches_the_cluster_settings(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("""
        from pytest_tidb_ha.cluster.supervisor import ENTRYPOINT
        from pytest_tidb_ha.cluster.specs import render_specs

        def test_probe(tidb_cluster_settings):
            specs = render_specs(tidb_cluster_settings)
            print(f"\\nPROBE {tidb_cluster_settings.kill_mode} "
                  f"{all(s.entrypoint == ENTRYPOINT for s in specs)}")
    """)
    monkeypatch.setenv("PYTEST_TIDB_HA_KILL_MODE", "process")
    result = pytester.runpytest("-s", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["PROBE process True"])
    result = pytester.runpytest("-s", "-q", "--ha-kill-mode=container")
    result.stdout.fnmatch_lines(["PROBE container False"])
    monkeypatch.delenv("PYTEST_TIDB_HA_KILL_MODE")
    result = pytester.runpytest("-s", "-q")  # the default: supervised, and silenced
    result.stdout.fnmatch_lines(["PROBE silent True"])
