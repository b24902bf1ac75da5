"""pytest-xdist: which process speaks, and which tests share a cluster.

Under ``-n N`` every worker is a whole pytest session of its own, but only the
controller's terminal and files are the run's output. So:

* workers never write the run's summaries (the ``tidb-ha verdicts`` section,
  ``$GITHUB_STEP_SUMMARY``): the controller rebuilds them from the reports the
  workers send (JUnit properties), once, complete;
* the ``--ha-dry-run`` plans a worker rendered travel to the controller in
  ``config.workeroutput`` at the worker's session end (:data:`PLANS_OUTPUT`)
  and are printed there in collection order;
* tests that need the same cluster (topology and images) carry one
  ``xdist_group`` mark (:func:`cluster_group`), so ``--dist loadgroup`` sends
  them to one worker and that worker's cluster pool starts the cluster once.

The xdist hooks are registered only when xdist is active (``XdistHooks``);
nothing here imports xdist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from .scenario.model import Topology
from .stash import ha_options

#: ``config.workeroutput`` key: ``[[collection index, nodeid, plan text], ...]``.
PLANS_OUTPUT = "tidb_ha_plans"
#: ``node.workerinput`` key: the controller's ``--ha-seed`` (given or picked), so every
#: worker makes the same random choices.
SEED_INPUT = "tidb_ha_seed"
#: Prefix of every ``xdist_group`` name the plugin gives.
GROUP_PREFIX = "tidb-ha"


def is_xdist_worker(config: pytest.Config) -> bool:
    """True in an xdist worker process (xdist sets ``workerinput`` there, and only there)."""
    return hasattr(config, "workerinput")


def cluster_group(topology: Topology, images: Mapping[str, str]) -> str:
    """The ``xdist_group`` name of tests that run on one kind of cluster.

    Readable topology plus a short digest of the images: the cluster pool reuses a
    cluster only for the same topology and images, so this is exactly its sharing unit.
    """
    digest = hashlib.sha1(
        ",".join(f"{c}={i}" for c, i in sorted(images.items())).encode(),
        usedforsecurity=False).hexdigest()[:8]
    return f"{GROUP_PREFIX}-pd{topology.pd}-tikv{topology.tikv}-tidb{topology.tidb}-{digest}"


def plans_payload(plans: Iterable[tuple[str, str]], order: Iterable[str]) -> list[list[Any]]:
    """What a worker sends: its plans with their collection index (pure)."""
    index = {nodeid: i for i, nodeid in enumerate(order)}
    return sorted(([index.get(nodeid, len(index)), nodeid, text] for nodeid, text in plans),
                  key=lambda p: (p[0], p[1]))


def merge_plans(received: Iterable[Iterable[Any]]) -> list[tuple[str, str]]:
    """The controller's plans from every worker's payload: each node id once, in
    collection order (every worker collects every test, so a plan may come twice)."""
    best: dict[str, tuple[int, str]] = {}
    for index, nodeid, text in received:
        best.setdefault(str(nodeid), (int(index), str(text)))
    return [(nodeid, text) for nodeid, (_, text) in
            sorted(best.items(), key=lambda kv: (kv[1][0], kv[0]))]


class XdistHooks:
    """Controller-side xdist hooks (registered only when the xdist plugin is active)."""

    def __init__(self, config: pytest.Config,
                 plans_key: pytest.StashKey[list[tuple[str, str]]]) -> None:
        self.config = config
        self.plans_key = plans_key
        self.received: list[list[Any]] = []

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[SEED_INPUT] = ha_options(self.config).seed

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        payload = output.get(PLANS_OUTPUT) or []
        if payload:
            self.received.extend(payload)
            self.config.stash[self.plans_key] = merge_plans(self.received)
