"""pytest glue only: options, markers, fixtures, YAML collection, dry run.

Everything with logic lives in pytest-free modules (``scenario/``,
``options.py``); this module adapts them to pytest's hooks:

* one ``tidb-ha`` option group, every option with an ini and env twin
  (resolved once in :func:`pytest_configure` into ``config.stash``);
* the ``fault`` / ``workload`` / ``tidb_cluster`` markers, registered with
  their signatures and turned into a ``Case`` at collection;
* ``*.yaml``/``*.yml`` files with a top-level ``cases:`` become one
  :class:`pytest.Function` per case (id ``<file stem>::<case name>``) whose
  callable is a plugin-owned function, so cases use fixtures normally;
* ``--ha-dry-run``: the plan of every case in a ``tidb-ha plan`` section.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .case_test import PLANS_KEY, plan_ha_case, run_ha_case, store_plan
from .fixtures import *  # noqa: F403 - the registry of every layer's fixtures
from .options import OPTION_SPECS, HAOptions, OptionError, resolve_options
from .recording import CASE_KEY, HA_OPTIONS_KEY, ha_options, ha_record  # noqa: F401
from .report.hooks import ReportHooks
from .scenario.errors import ScenarioError
from .scenario.loader import load_text, looks_like_case_file
from .scenario.markers import MARKER_HELP, case_from_markers
from .scenario.model import Case
from .scenario.needs import check_case_topology, required_topology
from .scenario.switches import check_switches

#: Fixtures that start or reach a cluster: marker tests using them are skipped in a dry run.
CLUSTER_FIXTURES = frozenset({"tidb_cluster", "tidb_client", "tidb_dsn", "tidb", "nemesis",
                              "ha_workload"})
CASE_MARKERS = ("fault", "workload", "tidb_cluster")
REPORT_PLUGIN = "tidb-ha-report"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tidb-ha", "TiDB HA regression tests (pytest-tidb-ha)")
    for spec in OPTION_SPECS:
        text = f"{spec.help}. Default: {spec.default}. ini: {spec.dest}, env: {spec.env}."
        if spec.kind == "bool":
            group.addoption(spec.cli, action="store_true", default=None, dest=spec.dest,
                            help=text)
            parser.addini(spec.dest, help=spec.help, type="string", default="")
        elif spec.kind == "list":
            group.addoption(spec.cli, action="append", default=[], dest=spec.dest,
                            metavar=spec.metavar, help=text)
            parser.addini(spec.dest, help=spec.help, type="linelist", default=[])
        else:
            group.addoption(spec.cli, default=None, dest=spec.dest, metavar=spec.metavar,
                            help=text)
            parser.addini(spec.dest, help=spec.help, type="string", default="")


def options_from_config(config: pytest.Config, env: Mapping[str, str] | None = None) -> HAOptions:
    """Resolve the options (CLI > env > ini > default) or raise :class:`pytest.UsageError`."""
    cli = {spec.dest: config.getoption(spec.dest, None) for spec in OPTION_SPECS}
    ini: dict[str, Any] = {spec.dest: config.getini(spec.dest) for spec in OPTION_SPECS}
    try:
        return resolve_options(cli, os.environ if env is None else env, ini)
    except OptionError as exc:
        raise pytest.UsageError(f"pytest-tidb-ha: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKER_HELP.values():
        config.addinivalue_line("markers", line)
    config.stash[HA_OPTIONS_KEY] = options_from_config(config)
    # header, JUnit properties, artifacts policy, verdict summary (report layer)
    if not config.pluginmanager.has_plugin(REPORT_PLUGIN):
        config.pluginmanager.register(ReportHooks(config), REPORT_PLUGIN)


# ---- YAML case files ---------------------------------------------------------------------

def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not looks_like_case_file(text):
        return None
    return CaseFile.from_parent(parent, path=file_path)


class CaseFile(pytest.File):
    """A QA case file: one test per case, each a plugin-owned :class:`pytest.Function`."""

    def collect(self) -> Iterator[pytest.Item]:
        opts = ha_options(self.config)
        text = self.path.read_text(encoding="utf-8")
        shown = self.nodeid.split("::")[0] or self.path.name
        try:
            cases = load_text(text, shown, stem=self.path.stem)
            for case in cases or ():
                check_switches(case)
                if not opts.attach:
                    check_case_topology(case, required_topology(case, opts.topology))
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        for case in cases or ():
            func = plan_ha_case if opts.dry_run else run_ha_case
            item = pytest.Function.from_parent(self, name=case.name, callobj=func)
            item.stash[CASE_KEY] = case
            for marker in case.markers:
                item.add_marker(marker)
            yield item


# ---- marker-based tests ------------------------------------------------------------------

def _marker_case(item: pytest.Item) -> Case | None:
    faults = [(m.args, m.kwargs) for m in item.iter_markers("fault")]
    workload = item.get_closest_marker("workload")
    cluster = item.get_closest_marker("tidb_cluster")
    if not faults and workload is None and cluster is None:
        return None
    return case_from_markers(
        item.nodeid, item.name, faults=faults,
        workload=(workload.args, workload.kwargs) if workload is not None else None,
        cluster=(cluster.args, cluster.kwargs) if cluster is not None else None,
    )


def _uses_cluster(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return any(n in CLUSTER_FIXTURES or n.startswith("tidb_cluster") for n in names)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Build every marker test's Case; all marker errors in one UsageError, before any run."""
    opts = ha_options(config)
    problems: list[str] = []
    for item in items:
        if CASE_KEY in item.stash:
            continue
        try:
            case = _marker_case(item)
            if case is not None and not opts.attach:
                check_case_topology(case, required_topology(case, opts.topology))
        except ScenarioError as exc:
            problems.append(str(exc))
            continue
        if case is not None:
            item.stash[CASE_KEY] = case
            if (case.faults and not opts.dry_run and isinstance(item, pytest.Function)
                    and _uses_cluster(item) and "nemesis" not in item.fixturenames):
                # declared faults run whenever the test has a cluster: a test that forgot
                # the fixture must not pass without its faults
                item.fixturenames.append("nemesis")
        if opts.dry_run and _uses_cluster(item):
            item.add_marker(pytest.mark.skip(reason="dry run"))
    if problems:
        raise pytest.UsageError("pytest-tidb-ha: invalid markers:\n  " + "\n  ".join(problems))


def _is_yaml_case(item: pytest.Item) -> bool:
    """YAML cases render their plan when they run (``plan_ha_case``)."""
    return isinstance(item.parent, CaseFile)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Dry run: plans of the marker tests that survived deselection (``-m``, ``-k``)."""
    if not ha_options(session.config).dry_run:
        return
    for item in session.items:
        if _uses_cluster(item) and CASE_KEY in item.stash and not _is_yaml_case(item):
            store_plan(session.config, item.nodeid, item.stash[CASE_KEY])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    plans = config.stash.get(PLANS_KEY, [])
    if not plans:
        return
    terminalreporter.write_sep("=", "tidb-ha plan")
    for _nodeid, text in plans:
        for line in text.splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line("")
