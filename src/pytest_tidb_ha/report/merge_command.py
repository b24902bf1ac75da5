"""``python -m pytest_tidb_ha merge DIR...``: one verdict summary from several shards.

Combines the JUnit files, shard records and kept verdicts of several shards (or
runs) into the ``tidb-ha verdicts`` table on the terminal, the same table in
``$GITHUB_STEP_SUMMARY`` when set, and one JUnit file (``--junitxml``). Exit
status 0 when every merged test passed (or was skipped) and the shards are
complete, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..redact import redact
from . import github
from .merge import collect_inputs, merge, write_junit
from .summary import SECTION_TITLE, summary_lines


def _parser() -> argparse.ArgumentParser:
    merge = argparse.ArgumentParser(
        prog="python -m pytest_tidb_ha merge",
        description="Read every JUnit *.xml, shard-K-of-N.json and verdicts.json under DIR... "
                    "(one folder per shard job, e.g. downloaded CI artifacts), print one "
                    "verdict summary and exit non-zero when a merged test failed or a shard "
                    "is missing.")
    merge.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                       help="a shard's results folder (or a JUnit file)")
    merge.add_argument("--junitxml", type=Path, metavar="FILE",
                       help="write one JUnit file with every testcase")
    merge.add_argument("--title", default="",
                       help="a line above the table (e.g. the CI run)")
    return merge


def merge_command(args: argparse.Namespace) -> int:
    missing = [str(d) for d in args.dirs if not d.exists()]
    if missing:
        print(f"tidb-ha merge: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    inputs = collect_inputs(args.dirs, exclude=args.junitxml)
    if not inputs.cases and not inputs.kept:
        print(f"tidb-ha merge: no JUnit results or verdicts.json under "
              f"{', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 2
    result = merge(inputs.cases, inputs.shards, inputs.kept)
    problems = inputs.problems + result.problems
    out = sys.stdout
    print(f"{'=' * 30} {SECTION_TITLE} {'=' * 30}", file=out)
    if args.title:
        print(redact(args.title), file=out)
    for line in summary_lines(result.tests):
        print(line, file=out)
    for outcome, test in result.failing:
        print(f"{'FAILED' if outcome == 'failed' else 'ERROR'} {redact(test)}", file=out)
    for problem in problems:
        print(f"PROBLEM: {redact(problem)}", file=out)
    print(result.totals_line(), file=out)
    if args.junitxml is not None:
        write_junit(result.junit, args.junitxml)
        print(f"tidb-ha merge: wrote {args.junitxml}", file=out)
    markdown = github.markdown_summary(result.tests, args.title)
    extra = "".join(f"\n**problem:** {' '.join(p.split())}\n" for p in problems)
    github.append_step_summary((markdown + extra + f"\n{result.totals_line()}\n")
                               if markdown or problems else "")
    return 1 if (result.failed or inputs.problems) else 0


def main(argv: Sequence[str] | None = None) -> int:
    return merge_command(_parser().parse_args(argv))

