"""Entry point of the stand-in cluster image (a TEST DOUBLE for pingcap/pd, tikv, tidb).

`/pd-server`, `/tikv-server` and `/tidb-server` in the image run
`python3 -u /opt/standin/main.py <component> "$@"`; this module only dispatches, so each
role's start-up cost is paid by that role alone (the TiDB role is imported lazily).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _usage() -> int:
    sys.stderr.write("usage: main.py {pd|tikv|tidb} [server flags...]\n")
    return 2


def main(argv: list[str]) -> int:
    """Run the named role with the remaining arguments; returns the process exit code."""
    if not argv:
        return _usage()
    component, args = argv[0], list(argv[1:])
    run: Callable[[list[str]], int]
    if component == "pd":
        from pd.server import main as run_pd

        run = run_pd
    elif component == "tikv":
        from tikv.server import main as run_tikv

        run = run_tikv
    elif component == "tidb":
        from tidb.server import main as run_tidb

        run = run_tidb
    else:
        return _usage()
    return int(run(args) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
