"""The distribution: ``python -m build`` makes a wheel and an sdist that pass ``twine check``
and install cleanly in fresh venvs, where the plugin loads and runs a case file's dry run.

Slow (builds in isolated environments, installs the dependencies from the package index
or pip's cache) but part of the default suite: the README's install instructions depend
on it. Built from a copy of the files git tracks, so nothing untracked slips in and the
work tree is left alone.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CASE = """\
cases:
  - name: smoke_kill
    faultType: kill
    selector: tikv(random)
    faultDuration: 10s
"""


def run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS"):
        env.pop(name, None)
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def tracked_copy(dest: Path) -> Path:
    files = run("git", "ls-files", "-z", cwd=REPO).split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def fresh_venv(path: Path, artifact: Path) -> Path:
    run(sys.executable, "-m", "venv", path)
    python = path / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", artifact)
    return python


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the packaging test builds from the git checkout (git ls-files)")
    root = tmp_path_factory.mktemp("build")
    src = tracked_copy(root / "src")
    out = root / "dist"
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, src)
    return out


def test_twine_check_passes(dist: Path) -> None:
    artifacts = sorted(dist.iterdir())
    assert sorted(p.suffix for p in artifacts) == [".gz", ".whl"], artifacts
    out = run(sys.executable, "-m", "twine", "check", "--strict", *artifacts)
    assert out.count("PASSED") == 2, out


def test_wheel_carries_metadata_license_and_data(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_string(zf.read(meta_name).decode())
        assert zf.read("pytest_tidb_ha/case.schema.json") == (
            REPO / "src/pytest_tidb_ha/case.schema.json").read_bytes()
    assert "pytest_tidb_ha/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert "Typing :: Typed" in (meta.get_all("Classifier") or [])
    requires = meta.get_all("Requires-Dist") or []
    assert any(r.startswith("pytest>=8.4") for r in requires)
    assert any(r.startswith("testcontainers") and "<5" in r for r in requires)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "tidb_ha = pytest_tidb_ha.plugin" in zf.read(entry_points).decode()


def test_sdist_is_complete(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for needed in ("LICENSE", "README.md", "pyproject.toml", "src/pytest_tidb_ha/py.typed",
                   "src/pytest_tidb_ha/case.schema.json", "src/pytest_tidb_ha/plugin.py"):
        assert needed in names, needed


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installs_cleanly_and_the_plugin_runs(dist: Path, tmp_path: Path, kind: str) -> None:
    (artifact,) = dist.glob("*.whl" if kind == "wheel" else "*.tar.gz")
    python = fresh_venv(tmp_path / "venv", artifact)
    run(python, "-m", "pip", "check")
    schema = run(python, "-m", "pytest_tidb_ha", "schema")
    assert schema == (REPO / "src/pytest_tidb_ha/case.schema.json").read_text()
    # the NFQUEUE delayer ships as a module and is read back as text (package data)
    delayer = run(python, "-c", "from pytest_tidb_ha.faults.delayer import SOURCE; print(SOURCE)")
    assert delayer.strip() == (REPO / "src/pytest_tidb_ha/faults/nfqueue_delayer.py").read_text().strip()
    project = tmp_path / "project"
    project.mkdir()
    (project / "cases.yaml").write_text(CASE)
    out = run(python, "-m", "pytest", "--ha-dry-run", "-p", "no:cacheprovider", cwd=project)
    assert "cases::smoke_kill" in out, out
    assert "1 passed" in out, out
    assert "tidb-ha plan" in out
