"""The one lint command: ruff, mypy (strict) and the import layers, over all we ship or run.

`scripts/test.sh` and `tox -e lint` both call exactly this, so a red line in one is a red
line in the other:

    .venv/bin/python scripts/lint.py        # or, inside tox: {envpython} scripts/lint.py

The interpreter that runs this script is the environment checked: ruff and mypy are run
as `<python> -m ruff` / `<python> -m mypy`, so no PATH or venv guessing is needed.

Why several mypy runs: the test tree is not a package. pytest imports each test directory
as its own flat namespace (`tests/unit/mysql_fake.py` is the module `mysql_fake`, every
directory has its own `conftest`), the bench scripts import `common` from `bench/`, and
the stand-in image's code imports `common`, `tidb`, `pd`, `tikv` from its own root.
One mypy run over all of it would see three `common` and five `conftest` modules, so
each such root is checked on its own, with its root on MYPYPATH - as pytest, the bench
scripts and the image see them. The settings (`strict = true`) come from pyproject.toml
for every run; each run has its own cache directory so the roots do not evict each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "tests/standin/image"

RUFF_PATHS = ["src", "tests", "bench", "scenarios", "conftest.py", "scripts"]

# (name, MYPYPATH entries, paths to check); `src` takes its files from pyproject.toml
MYPY_ROOTS: list[tuple[str, list[str], list[str]]] = [
    ("src", [], []),
    ("image", [IMAGE], ["--explicit-package-bases", IMAGE]),
    ("bench", ["bench"], ["bench"]),
    ("root", [], ["scenarios", "conftest.py", "scripts/lint.py"]),
    ("tests", ["tests"], ["tests/conftest.py"]),
    # unit tests hand partial fakes (only what the code under test reads) to functions typed
    # with the ClusterLike protocol: argument types are not checked there, all else is
    ("tests-unit", ["tests/unit"], ["--disable-error-code", "arg-type", "tests/unit"]),
    ("tests-plugin", ["tests/plugin"], ["tests/plugin"]),
    ("tests-packaging", ["tests/packaging"], ["tests/packaging"]),
    ("tests-corpus", ["tests/corpus"], ["tests/corpus"]),
    ("tests-integration", ["tests/integration"], ["tests/integration"]),
    ("tests-realbin", ["tests/realbin"], ["tests/realbin"]),
    # the stand-in's tests import the image's modules (standin_helpers puts them on sys.path)
    ("tests-standin", ["tests/standin", IMAGE], ["--exclude", IMAGE, "tests/standin"]),
]


def _run(label: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    print(f"lint: {label}", flush=True)
    # our own fixed argv (this interpreter and its tools), no shell
    return subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode  # noqa: S603


def main() -> int:
    py = sys.executable
    failed: list[str] = []
    if _run("ruff", [py, "-m", "ruff", "check", *RUFF_PATHS]):
        failed.append("ruff")
    for name, mypypath, paths in MYPY_ROOTS:
        # src first: the package is checked from this tree, whatever the venv installed
        env = dict(os.environ, MYPYPATH=os.pathsep.join(["src", *mypypath]))
        argv = [py, "-m", "mypy", "--cache-dir", f".mypy_cache/{name}", *paths]
        if _run(f"mypy {name}", argv, env):
            failed.append(f"mypy {name}")
    # import-linter's layers contract, once pyproject.toml declares one (its console script
    # sits beside this interpreter; it has no `python -m` entry)
    if "[tool.importlinter]" in (ROOT / "pyproject.toml").read_text(encoding="utf-8"):
        lint_imports = Path(py).parent / "lint-imports"
        if _run("import layers", [str(lint_imports)]):
            failed.append("lint-imports")
    if failed:
        print(f"lint: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("lint: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
