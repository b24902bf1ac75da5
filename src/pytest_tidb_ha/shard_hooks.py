"""pytest glue of ``--ha-shard K/N`` (the split itself is :mod:`.shard`, pure).

The split must see the *final* selection: pytest's own ``-k``/``-m``/``--deselect``
(and ``--lf``) deselect inside ``pytest_collection_modifyitems`` implementations
of their own, and the plugin builds marker tests' cases in its implementation.
So this is a new-style wrapper with ``tryfirst``: the outermost wrapper, whose
code after ``yield`` runs once every other implementation (and every other
wrapper's own post-processing) is done. What it drops it reports through
``pytest_deselected``, so the terminal counts it as "deselected".

Under pytest-xdist every worker collects and splits the same way (the split is
deterministic), and the controller prints the plan the workers send in
``workeroutput``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from .cluster_key import cluster_key
from .options import HAOptions
from .scenario.estimate import PLAIN_TEST, SETUP_WALL, estimate_case
from .shard import ShardPlan, ShardSpec, Unit, plan_lines, plan_shard
from .stash import CASE_KEY, ha_options

SECTION_TITLE = "tidb-ha shard"
WORKEROUTPUT_KEY = "tidb_ha_shard_plan"


def shard_file(artifacts: Path, spec: ShardSpec) -> Path:
    """Where a shard writes what it was given to run (``merge`` checks it is all there)."""
    return artifacts / f"shard-{spec.index}-of-{spec.count}.json"


def item_unit(item: pytest.Item, opts: HAOptions, uses_cluster: Callable[[pytest.Item], bool]) -> Unit:
    """The item's id, planner estimate and cluster key."""
    if not uses_cluster(item):
        return Unit(item.nodeid, PLAIN_TEST, None)
    case = item.stash.get(CASE_KEY, None)
    if case is None:
        return Unit(item.nodeid, SETUP_WALL, cluster_key(None, opts))
    estimate = estimate_case(case, time_scale=opts.time_scale, workload_scale=opts.workload_scale)
    return Unit(item.nodeid, estimate.seconds, cluster_key(case, opts))


class ShardHooks:
    """Plugin object registered by ``plugin.py`` when ``--ha-shard`` is given."""

    def __init__(self, spec: ShardSpec, uses_cluster: Callable[[pytest.Item], bool]) -> None:
        self.spec = spec
        self.uses_cluster = uses_cluster
        self.plan: ShardPlan | None = None
        self.remote_lines: list[str] | None = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> Generator[None, None, None]:
        result = yield
        opts = ha_options(config)
        units = [item_unit(item, opts, self.uses_cluster) for item in items]
        plan = plan_shard(units, self.spec)
        keep = {u.id for u in plan.units}
        deselected = [item for item in items if item.nodeid not in keep]
        items[:] = [item for item in items if item.nodeid in keep]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        self.plan = plan
        self._write(opts.artifacts, plan)
        workeroutput = getattr(config, "workeroutput", None)
        if isinstance(workeroutput, dict):  # an xdist worker: the controller prints it
            workeroutput[WORKEROUTPUT_KEY] = plan_lines(plan)
        return result

    def _write(self, artifacts: Path, plan: ShardPlan) -> None:
        path = shard_file(artifacts, self.spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(plan.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)  # xdist workers write the same content: last one wins

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        if self.plan is None:
            return []
        return plan_lines(self.plan, verbose=config.get_verbosity() > 0)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """xdist controller: keep the plan the first worker sent (all send the same)."""
        output = getattr(node, "workeroutput", None) or {}
        lines = output.get(WORKEROUTPUT_KEY)
        if self.remote_lines is None and lines:
            self.remote_lines = [str(line) for line in lines]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.remote_lines:
            terminalreporter.write_sep("=", SECTION_TITLE)
            for line in self.remote_lines:
                terminalreporter.write_line(line)
