"""pytest glue only: options, markers, fixtures, YAML collection, dry run.

Everything with logic lives in pytest-free modules (``scenario/``,
``options.py``); this module adapts them to pytest's hooks:

* one ``tidb-ha`` option group, every option with an ini and env twin
  (resolved once in :func:`pytest_configure` into ``config.stash``);
* the ``fault`` / ``workload`` / ``tidb_cluster`` markers, registered with
  their signatures and turned into a ``Case`` at collection;
* YAML files matching ``ha_case_files`` (default ``*.yaml *.yml``) that carry
  QA keys (a top-level ``cases:``, ``faultType``, ``warmUpTime`` ...) become one
  :class:`CaseItem` (a :class:`pytest.Function`) per case (id
  ``<file>::<case name>``, ``<file>::<config>::<case name>`` for QA's config
  list) whose callable is a plugin-owned function, so cases use fixtures
  normally, and whose location is the case's own ``file:line``; such a file
  that cannot be read as cases fails collection;
* ``--ha-dry-run``: the plan of every case in a ``tidb-ha plan`` section.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .case_test import RUN_FIXTURES, plan_ha_case, run_ha_case, store_plan
from .casefiles import CASE_FILES_INI, DEFAULT_PATTERNS, is_candidate
from .cluster.fixtures import requested_topology
from .fixtures import *  # noqa: F403 - the registry of every layer's fixtures
from .options import OPTION_SPECS, HAOptions, OptionError, resolve_options, with_seed
from .parallel import (
    PLANS_OUTPUT,
    SEED_INPUT,
    XdistHooks,
    cluster_group,
    is_xdist_worker,
    plans_payload,
)
from .recording import ha_record  # noqa: F401
from .report.hooks import ReportHooks
from .scenario import timing
from .scenario.errors import ScenarioError
from .scenario.gcpause import gc_paused
from .scenario.markers import MARKER_HELP, case_from_markers
from .scenario.model import Case, Duration, Topology
from .scenario.needs import check_case_topology, required_topology
from .scenario.switches import check_switches
from .stash import CASE_KEY, HA_OPTIONS_KEY, PLANS_KEY, ha_options

if TYPE_CHECKING:
    from .casecache import CaseCache
    from .scenario.loader import CaseGroup

#: Fixtures that start or reach a cluster: marker tests using them are skipped in a dry run.
CLUSTER_FIXTURES = frozenset({"tidb_cluster", "tidb_client", "tidb_dsn", "tidb", "nemesis",
                              "ha_workload"})
CASE_MARKERS = ("fault", "workload", "tidb_cluster")
REPORT_PLUGIN = "tidb-ha-report"
SHARD_PLUGIN = "tidb-ha-shard"
XDIST_PLUGIN = "tidb-ha-xdist"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tidb-ha", "TiDB HA regression tests (pytest-tidb-ha)")
    parser.addini(CASE_FILES_INI, type="args", default=list(DEFAULT_PATTERNS),
                  help="glob patterns of QA case files, like python_files "
                       f"(default: {' '.join(DEFAULT_PATTERNS)})")
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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # first of the cleanups registered, so the last to run: after pytest's own end-of-run
    # garbage collections, which the freeze at collection's end spares
    config.add_cleanup(lambda: _unfreeze_collected(config))
    for line in MARKER_HELP.values():
        config.addinivalue_line("markers", line)
    # one seed for the whole run: an xdist worker takes its controller's
    inherited = getattr(config, "workerinput", {}).get(SEED_INPUT)
    config.stash[HA_OPTIONS_KEY] = with_seed(options_from_config(config), inherited)
    # header, JUnit properties, artifacts policy, verdict summary (report layer)
    if not config.pluginmanager.has_plugin(REPORT_PLUGIN):
        config.pluginmanager.register(ReportHooks(config), REPORT_PLUGIN)
    # --ha-shard K/N: keep shard K of the final selection (after -k/-m)
    shard = config.stash[HA_OPTIONS_KEY].shard
    if shard is not None and not config.pluginmanager.has_plugin(SHARD_PLUGIN):
        from .shard_hooks import ShardHooks

        config.pluginmanager.register(ShardHooks(shard, _uses_cluster), SHARD_PLUGIN)
    # pytest-xdist controller: receives the workers' dry-run plans
    if (config.pluginmanager.has_plugin("xdist") and not is_xdist_worker(config)
            and not config.pluginmanager.has_plugin(XDIST_PLUGIN)):
        config.pluginmanager.register(XdistHooks(config, PLANS_KEY), XDIST_PLUGIN)


# ---- YAML case files ---------------------------------------------------------------------

def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    # candidates: the ha_case_files globs, or a YAML file named on the command line
    if not is_candidate(file_path, parent.config.getini(CASE_FILES_INI),
                        named=parent.session.isinitpath(file_path)):
        return None
    try:
        text = file_path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None
    # the loader (PyYAML, the case cache) is imported once a YAML candidate shows up: a
    # suite without case files never pays for it
    from .scenario.loader import looks_like_case_file

    if not looks_like_case_file(text):
        return None
    return CaseFile.from_parent(parent, path=file_path)


class CaseFile(pytest.File):
    """A QA case file: one test per case, each a plugin-owned :class:`pytest.Function`.

    QA's config list (``- name: <config>`` / ``default: |``) gets one
    :class:`CaseConfig` per named config, so ids read ``<file>::<config>::<case>``.
    A file that carries QA keys but cannot be read as cases fails collection.
    """

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        _spare_exit_collection()
        self.config.stash[CASES_COLLECTED_KEY] = True
        opts = ha_options(self.config)
        shown = self.nodeid.split("::")[0] or self.path.name
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.CollectError(f"{shown}: cannot read this QA case file: {exc}") from None
        topologies: dict[int, Topology] = {}  # id(case) -> its cluster, for the marks
        # equal clusters as one object: a file's cases need a few distinct ones, and each
        # object kept is one more for every later garbage collection to walk
        shared: dict[Topology, Topology] = {}
        # the file's cases and items are built without the cyclic collector (as the loader
        # reads): they are thousands of new objects without cycles, walked once afterwards
        with gc_paused():
            try:
                groups = _load(self.config, text, shown, self.path.stem) or ()
                for group in groups:
                    for case in group.cases:
                        check_switches(case)
                        if not opts.attach:
                            topology = required_topology(case, opts.topology)
                            topology = topologies[id(case)] = shared.setdefault(topology,
                                                                                topology)
                            check_case_topology(case, topology)
            except ScenarioError as exc:
                raise self.CollectError(str(exc)) from None
            out: list[pytest.Item | pytest.Collector] = []
            for group in groups:
                if group.config is None:
                    out += case_items(self, group.cases, topologies)
                else:
                    out.append(CaseConfig.from_parent(self, name=group.config, cases=group.cases,
                                                      topologies=topologies))
        return out


_EXIT_FREEZE: list[bool] = []  # registered once per process
#: This session collected a QA case file (its objects are frozen at collection's end).
CASES_COLLECTED_KEY = pytest.StashKey[bool]()
#: This session froze them (``pytest_collection_finish``): its cleanup unfreezes them.
FROZEN_KEY = pytest.StashKey[bool]()


def _spare_exit_collection() -> None:
    """At interpreter exit, move every live object to the cyclic collector's permanent
    generation (``gc.freeze``) so that shutdown does not walk them again.

    Why: a session with thousands of case items holds hundreds of thousands of
    tracked objects (nodes, cases, marks) until the process ends; CPython's shutdown
    then runs full collections over all of them and frees them one by one -- about
    1 s of CPU for 10,000 cases (``bench/collection.py``), more than collecting them
    cost pytest. The memory goes back to the OS with the process either way. Only
    unreachable cycles are left unfreed (CPython never promises their ``__del__`` at
    exit); module state is still torn down as usual and ``logging`` still flushes
    (its exit hook runs after this one). Registered only once a QA case file is
    collected, so a suite without one exits as before.
    """
    if not _EXIT_FREEZE:
        _EXIT_FREEZE.append(True)
        atexit.register(gc.freeze)


#: The cluster a YAML case needs (``needs.required_topology``), computed by its file's checks.
TOPOLOGY_KEY = pytest.StashKey[Topology]()
#: The session's case cache (``casecache``); None when pytest's cache provider is off.
CASE_CACHE_KEY = pytest.StashKey["CaseCache | None"]()


def _load(config: pytest.Config, text: str, shown: str, stem: str) -> tuple[CaseGroup, ...] | None:
    """:func:`load_groups`, remembered between sessions when pytest's cache is on."""
    from .casecache import CACHE_NAME, CaseCache, loader_fingerprint
    from .scenario.loader import load_groups

    if CASE_CACHE_KEY not in config.stash:
        cache: CaseCache | None = None
        provider = getattr(config, "cache", None)  # absent under -p no:cacheprovider
        if provider is not None:
            with contextlib.suppress(OSError):
                cache = CaseCache(provider.mkdir(CACHE_NAME), loader_fingerprint())
        config.stash[CASE_CACHE_KEY] = cache
    cache = config.stash[CASE_CACHE_KEY]
    if cache is None:
        return load_groups(text, shown, stem=stem)
    return cache.load(text, shown, stem=stem)


class CaseConfig(pytest.Collector):
    """One named config of QA's config list: its cases, already loaded by the file."""

    def __init__(self, *, cases: tuple[Case, ...], topologies: Mapping[int, Topology],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cases = cases
        self.topologies = topologies

    def collect(self) -> Iterator[pytest.Item]:
        yield from case_items(self, self.cases, self.topologies)


def case_items(parent: pytest.Collector, cases: tuple[Case, ...],
               topologies: Mapping[int, Topology]) -> Iterator[pytest.Item]:
    """One :class:`CaseItem` per case. ``topologies``: the cluster each case needs (by
    ``id``), as the file's checks computed it, kept for the marks.

    Each item resolves its own fixture closure, as a hand-written test does: pytest takes
    a shared resolution (``fixtureinfo=``) but offers no public way to get one, and the
    plugin uses no private attribute. So the closure is kept small: the case function
    takes ``request`` only, and a running case names its fixtures (``RUN_FIXTURES``) in
    ``item.fixturenames``, which pytest sets up before the call (``case_test``);
    ``bench/collection.py`` measures what is left.
    """
    dry_run = ha_options(parent.config).dry_run
    func = plan_ha_case if dry_run else run_ha_case
    for case in cases:
        item = CaseItem.from_parent(parent, name=case.name, callobj=func, case=case)
        if not dry_run:
            item.fixturenames.extend(n for n in RUN_FIXTURES if n not in item.fixturenames)
        topology = topologies.get(id(case))
        if topology is not None:
            item.stash[TOPOLOGY_KEY] = topology
        for marker in case.markers:
            item.add_marker(marker)
        yield item


class CaseItem(pytest.Function):
    """One YAML case: a plugin-owned function that *points at the case*.

    Its location (``reportinfo``) is the case file and the case's line, not the
    function it runs, so JUnit ``file``/``line``, ``-rs`` lines and CI annotations
    land on the case a QA engineer wrote.
    """

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stash[CASE_KEY] = case

    def reportinfo(self) -> tuple[Path, int, str]:
        line = self.stash[CASE_KEY].source.line
        return self.path, (line - 1 if line else 0), self.name


# ---- marker-based tests ------------------------------------------------------------------

class _ChainMarks:
    """Which mark names a node and its parents carry, asked once per parent.

    ``item.iter_markers()`` walks the item's whole parent chain (module, package,
    session) on every call: for a suite without HA tests, asking each of 10,000
    items whether it has a ``fault`` mark was most of what the plugin cost it
    (``bench/collection.py``, plain items). An item's marks are its
    ``own_markers`` followed by its parent's (``iter_markers``'s order), and the
    items of one module share that parent: so the parent's answer is kept here,
    for one hook call (marks are only ever added to items in between).
    """

    def __init__(self) -> None:
        self._parents: dict[int, tuple[pytest.Collector | None, frozenset[str]]] = {}

    def _parent_names(self, parent: pytest.Collector | None) -> frozenset[str]:
        if parent is None:
            return frozenset()
        found = self._parents.get(id(parent))
        if found is None or found[0] is not parent:
            names = frozenset(mark.name for mark in parent.iter_markers())
            found = self._parents[id(parent)] = (parent, names)
        return found[1]

    def any_of(self, item: pytest.Item, names: tuple[str, ...]) -> bool:
        """Does the item or a parent carry a mark named in ``names``?"""
        for mark in item.own_markers:  # a loop, not any(): this runs for every item
            if mark.name in names:
                return True
        return not self._parent_names(item.parent).isdisjoint(names)

    def has(self, item: pytest.Item, name: str) -> bool:
        """``item.get_closest_marker(name) is not None``, the parents asked once."""
        return any(mark.name == name for mark in item.own_markers) or \
            name in self._parent_names(item.parent)


def _marker_case(item: pytest.Item, chain: _ChainMarks | None = None) -> Case | None:
    if chain is not None and not chain.any_of(item, CASE_MARKERS):
        return None  # the common case, a test without HA marks: no walk over its parents
    # one walk over the item's marks (closest first), not one per marker name
    faults: list[tuple[tuple[Any, ...], Mapping[str, Any]]] = []
    workload = cluster = None
    for mark in item.iter_markers():
        if mark.name == "fault":
            faults.append((mark.args, mark.kwargs))
        elif mark.name == "workload" and workload is None:
            workload = mark
        elif mark.name == "tidb_cluster" and cluster is None:
            cluster = mark
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


class _ClusterUse:
    """:func:`_uses_cluster`, asked once per fixture-name list within one hook call.

    The items of one parametrized test share their ``fixturenames`` list, so a suite
    of 10,000 plain items has a few hundred lists to look at, not 10,000. The plugin
    only ever appends cluster fixtures to a list whose answer is already True, so a
    remembered answer stays right.
    """

    def __init__(self) -> None:
        self._seen: dict[int, tuple[object, bool]] = {}

    def __call__(self, item: pytest.Item) -> bool:
        names = getattr(item, "fixturenames", ())
        found = self._seen.get(id(names))
        if found is None or found[0] is not names:
            found = self._seen[id(names)] = (names, _uses_cluster(item))
        return found[1]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks (loadgroup)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Build every marker test's Case; all marker errors in one UsageError, before any run.
    Then the companions' marks of every cluster test: its pytest-timeout deadline and,
    under xdist, the group of tests that share its cluster.

    The pass runs with the cyclic collector paused (``gc_paused``): it makes only
    acyclic objects (cases, marks, small lists), yet its allocations, right after a
    collection that left hundreds of thousands of objects young, set off collections
    that walked every item again -- a full one most times (``bench/collection.py``:
    ~0.1-0.2 s per 10,000 case items). Garbage of the pass is freed by reference
    counting; the collector runs again after it as before.
    """
    with gc_paused():
        _modify_items(config, items)


def _modify_items(config: pytest.Config, items: list[pytest.Item]) -> None:
    """:func:`pytest_collection_modifyitems`'s pass (the collector paused)."""
    opts = ha_options(config)
    problems: list[str] = []
    chain = _ChainMarks()
    uses_cluster = _ClusterUse()
    for item in items:
        if CASE_KEY in item.stash:
            continue
        try:
            case = _marker_case(item, chain)
            if case is not None and not opts.attach:
                check_case_topology(case, required_topology(case, opts.topology))
        except ScenarioError as exc:
            problems.append(str(exc))
            continue
        if case is not None:
            item.stash[CASE_KEY] = case
            if (case.faults and not opts.dry_run and isinstance(item, pytest.Function)
                    and uses_cluster(item) and "nemesis" not in item.fixturenames):
                # declared faults run whenever the test has a cluster: a test that forgot
                # the fixture must not pass without its faults
                item.fixturenames.append("nemesis")
        if opts.dry_run and uses_cluster(item):
            item.add_marker(pytest.mark.skip(reason="dry run"))
    if problems:
        raise pytest.UsageError("pytest-tidb-ha: invalid markers:\n  " + "\n  ".join(problems))
    if not opts.dry_run:
        _companion_marks(config, opts, [item for item in items if uses_cluster(item)], chain)


def _user_timeout(config: pytest.Config) -> bool:
    """Did the user set pytest-timeout's deadline for the run (CLI, env or ini)?"""
    return (config.getoption("timeout", None) is not None
            or bool(os.environ.get("PYTEST_TIMEOUT", "").strip())
            or bool(str(config.getini("timeout") or "").strip()))


def _companion_marks(config: pytest.Config, opts: HAOptions, items: list[pytest.Item],
                     chain: _ChainMarks | None = None) -> None:
    """Marks that tell pytest-timeout and pytest-xdist what a cluster test needs.

    * ``timeout``: the case's budget (``timing.case_budget``) plus ``timing.STARTUP_MARGIN``,
      so a stuck cluster fails its test instead of eating the CI job's hour. The
      user's own deadline wins: a ``timeout`` mark on the test, or ``--timeout`` /
      ``PYTEST_TIMEOUT`` / ini ``timeout`` for the run (then no test gets ours).
    * ``xdist_group``: one name per cluster (topology + images, the pool's sharing
      unit), so ``--dist loadgroup`` keeps a cluster's tests on one worker. Only under
      ``--dist loadgroup`` (xdist reads the mark in no other mode: a mark per item is
      collection time for nothing, ``bench/collection.py``); not in attach mode (one
      existing cluster); a test's own ``xdist_group`` wins.

    Only when that plugin is active (an unregistered mark would be an error under
    ``--strict-markers``).
    """
    pm = config.pluginmanager
    chain = chain or _ChainMarks()
    timeouts = ((pm.has_plugin("timeout") or pm.has_plugin("pytest_timeout"))
                and not _user_timeout(config))
    groups = (pm.has_plugin("xdist") and not opts.attach
              and config.getoption("dist", "no") == "loadgroup")
    # marks are immutable: one per distinct deadline / cluster, shared by the items
    timeout_marks: dict[int, pytest.MarkDecorator] = {}
    group_marks: dict[tuple[Topology, str | None], pytest.MarkDecorator] = {}
    for item in items:
        case: Case | None = item.stash.get(CASE_KEY, None)
        if timeouts and not chain.has(item, "timeout"):
            budget = timing.case_budget(case or Case(name=item.name, warmup=Duration(0.0)),
                                        opts.time_scale, jobs_declared=isinstance(item, CaseItem))
            seconds = math.ceil(budget + timing.STARTUP_MARGIN)
            mark = timeout_marks.get(seconds)
            if mark is None:
                mark = timeout_marks[seconds] = pytest.mark.timeout(seconds)
            item.add_marker(mark)
        if groups and not chain.has(item, "xdist_group"):
            topology = item.stash.get(TOPOLOGY_KEY, None) or requested_topology(item,
                                                                                opts.topology)
            key = (topology, case.version if case is not None else None)
            mark = group_marks.get(key)
            if mark is None:
                name = cluster_group(key[0], opts.images_for(key[1]))
                mark = group_marks[key] = pytest.mark.xdist_group(name)
            item.add_marker(mark)


def _is_yaml_case(item: pytest.Item) -> bool:
    """YAML cases render their plan when they run (``plan_ha_case``)."""
    return isinstance(item, CaseItem)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Dry run: plans of the marker tests that survived deselection (``-m``, ``-k``).

    Once a QA case file was collected, every object alive now -- the case items, their
    cases and marks, which live until the session ends -- is moved out of the cyclic
    collector's sight (``gc.freeze``), as at exit (`_spare_exit_collection`): every full
    collection after this point walked them again for nothing, the test run's and
    pytest's at its end (``gc_collect_harder``, which looks for unraisable exceptions):
    with 10,000 cases a tenth of a ``--collect-only`` run's CPU (``bench/collection.py``).
    Reference counting still frees them. The session's last cleanup unfreezes them
    (`_unfreeze_collected`), so a cycle made before this point and dropped later is
    reclaimed then, and a session run inside another process (``pytester``) leaves
    nothing frozen behind.
    """
    if session.config.stash.get(CASES_COLLECTED_KEY, False):
        gc.freeze()
        session.config.stash[FROZEN_KEY] = True
    if not ha_options(session.config).dry_run:
        return
    for item in session.items:
        if _uses_cluster(item) and CASE_KEY in item.stash and not _is_yaml_case(item):
            store_plan(session.config, item.nodeid, item.stash[CASE_KEY])


def _unfreeze_collected(config: pytest.Config) -> None:
    if config.stash.get(FROZEN_KEY, False):
        del config.stash[FROZEN_KEY]
        gc.unfreeze()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its dry-run plans to the controller, which prints them."""
    config = session.config
    plans = config.stash.get(PLANS_KEY, [])
    if plans and is_xdist_worker(config):
        output: dict[str, Any] = config.workeroutput  # type: ignore[attr-defined]
        output[PLANS_OUTPUT] = plans_payload(plans, (item.nodeid for item in session.items))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    plans = config.stash.get(PLANS_KEY, [])
    if not plans or is_xdist_worker(config):
        return
    terminalreporter.write_sep("=", "tidb-ha plan")
    for _nodeid, text in plans:
        for line in text.splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line("")
