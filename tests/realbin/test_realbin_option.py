"""The repository's ``--realbin`` switch (top-level conftest.py) and the ``realbin`` marker.

* ``--realbin`` builds the image once and points every component at it, as ``--tidb-image``
  would, with TiDB's version v7.5.0 and no stand-in environment (the build runs in the
  realbin stage, where the image is current: seconds);
* ``--realbin`` with ``--standin`` is a usage error before anything is built;
* without ``--realbin`` every ``realbin`` test is skipped, saying how to run it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_conftest(pytester: pytest.Pytester) -> None:
    text = (REPO / "conftest.py").read_text()
    for script in ("standin", "realbin"):
        original = f'Path(__file__).parent / "tests" / "{script}" / "build.sh"'
        assert original in text
        text = text.replace(original, f"Path({str(REPO / 'tests' / script / 'build.sh')!r})")
    pytester.makeconftest(text)


@pytest.mark.realbin
@pytest.mark.docker
def test_realbin_points_every_component_at_the_image(pytester: pytest.Pytester,
                                                     repo_conftest: None) -> None:
    pytester.makepyfile(test_settings="""
        from pytest_tidb_ha.stash import ha_options

        def test_settings(tidb_cluster_settings, request):
            s = tidb_cluster_settings
            ref = s.images["pd"]
            assert ref.startswith("tidb-realbin:")
            assert dict(s.images) == dict.fromkeys(("pd", "tikv", "tidb"), ref)
            assert not s.env and s.pull_missing is False
            opts = ha_options(request.config)
            assert opts.tidb_version == "v7.5.0"
            assert set(opts.images_for("v8.5.7").values()) == {ref}
    """)
    result = pytester.runpytest_subprocess("--realbin", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*real-binary cluster: image tidb-realbin:* (real tidb-server "
                                 "v7.5.0 and pd-server; tikv-server is a unistore store, NOT TiKV)*"])


def test_realbin_and_standin_together_are_a_usage_error(pytester: pytest.Pytester,
                                                        repo_conftest: None) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--realbin", "--standin", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--realbin and --standin choose different images: use one*"])


def test_realbin_tests_skip_without_the_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/realbin/test_realbin_versions.py", "-p", "no:cacheprovider",
         "-q", "-rs"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ skipped in [0-9.]+s", summary), done.stdout[-2000:]
    assert "needs --realbin (bash tests/realbin/build.sh; pytest tests/realbin --realbin)" \
        in done.stdout, done.stdout[-2000:]
