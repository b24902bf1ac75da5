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

The checks are independent single-threaded processes, so they run side by side, one per
core (a cold mypy cache made the serial run about a minute of CI's critical path); each
check's output is printed whole, in the order below, when it is done.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """One check: its exit code and its whole output (stdout and stderr, interleaved)."""
    # our own fixed argv (this interpreter and its tools), no shell
    done = subprocess.run(argv, cwd=ROOT, env=env, check=False,  # noqa: S603
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.returncode, done.stdout


def checks() -> list[tuple[str, list[str], dict[str, str] | None]]:
    """(label, argv, env) of every check, in the order their output is printed."""
    py = sys.executable
    out: list[tuple[str, list[str], dict[str, str] | None]] = [
        ("ruff", [py, "-m", "ruff", "check", *RUFF_PATHS], None)]
    for name, mypypath, paths in MYPY_ROOTS:
        # src first: the package is checked from this tree, whatever the venv installed
        env = dict(os.environ, MYPYPATH=os.pathsep.join(["src", *mypypath]))
        out.append((f"mypy {name}",
                    [py, "-m", "mypy", "--cache-dir", f".mypy_cache/{name}", *paths], env))
    # import-linter's layers contract, once pyproject.toml declares one (its console script
    # sits beside this interpreter; it has no `python -m` entry)
    if "[tool.importlinter]" in (ROOT / "pyproject.toml").read_text(encoding="utf-8"):
        out.append(("import layers", [str(Path(py).parent / "lint-imports")], None))
    return out


def main() -> int:
    todo = checks()
    failed: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        runs = [pool.submit(_run, argv, env) for _, argv, env in todo]
        for (label, _, _), run in zip(todo, runs, strict=True):
            print(f"lint: {label}", flush=True)
            code, output = run.result()
            print(output, end="", flush=True)
            if code:
                failed.append("lint-imports" if label == "import layers" else label)
    if failed:
        print(f"lint: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("lint: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
