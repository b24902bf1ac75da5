"""The cluster an item runs on, as one string (pure): topology + images.

Two items with the same key are served by the same pooled cluster (the
``tidb_cluster`` fixture sizes it with :func:`~.scenario.needs.required_topology`
and picks the images with :meth:`~.options.HAOptions.images_for`), so whatever
wants to keep them together — the ``--ha-shard`` split, an ``xdist_group`` —
groups by this key. Keep it in step with ``cluster/fixtures.py``.
"""

from __future__ import annotations

from .options import HAOptions
from .scenario.model import Case, Topology
from .scenario.needs import required_topology


def cluster_key(case: Case | None, options: HAOptions) -> str:
    """``pd=1,tikv=3,tidb=1 pd=IMAGE,tikv=IMAGE,tidb=IMAGE`` of an item that uses a cluster.

    ``case`` is the item's Case (YAML case or built from its markers), None for a
    cluster test without markers. In attach mode every item shares the one cluster.
    """
    if options.attach:
        return f"attach {options.dsn}"
    if case is None:
        topology = options.topology or Topology()
        images = options.images
    else:
        topology = required_topology(case, options.topology)
        images = options.images_for(case.version)
    return f"{topology} " + ",".join(f"{c}={i}" for c, i in sorted(images.items()))
