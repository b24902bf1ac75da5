"""The repository's own switches ``--standin`` / ``--standin-bugs`` (top-level conftest.py).

Runs pytest in a subprocess with a copy of the repository conftest: the options must build
the image, point every component (also of a version-pinned case) at it, and give every
stand-in container ``STANDIN_BUGS`` and ``STANDIN_TIME_SCALE``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_conftest(pytester: pytest.Pytester) -> None:
    text = (REPO / "conftest.py").read_text()
    original = 'Path(__file__).parent / "tests" / "standin" / "build.sh"'
    assert original in text
    pytester.makeconftest(text.replace(original, f"Path({str(REPO / 'tests/standin/build.sh')!r})"))


def test_standin_switches_set_images_and_env(pytester: pytest.Pytester, repo_conftest: None,
                                             standin_image: str) -> None:
    # The ref is a content hash: compare with what the subprocess itself built (the image
    # sources may change while this session runs).
    pytester.makepyfile(test_settings="""
        from pytest_tidb_ha.stash import ha_options

        def test_settings(tidb_cluster_settings, request):
            s = tidb_cluster_settings
            ref = s.images["pd"]
            assert ref.startswith("tidb-standin:")
            assert dict(s.images) == dict.fromkeys(("pd", "tikv", "tidb"), ref)
            for component in ("pd", "tikv", "tidb"):
                assert s.env[component]["STANDIN_BUGS"] == "48303,46735"
                assert s.env[component]["STANDIN_TIME_SCALE"] == "0.02"
            assert s.pull_missing is False
            # a case pinning another release gets the stand-in tagged for that release
            pinned = ha_options(request.config).images_for("v6.5.0")
            assert set(pinned.values()) == {ref.removesuffix("-v8.5.7") + "-v6.5.0"}
    """)
    result = pytester.runpytest_subprocess(
        "--standin", "--standin-bugs", "48303,#46735", "--ha-time-scale", "0.02", "-p", "no:cacheprovider", "-v"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*stand-in cluster (TEST DOUBLE): image tidb-standin:*, bug modes: 48303,46735*"])


def test_without_standin_the_settings_are_untouched(pytester: pytest.Pytester, repo_conftest: None) -> None:
    pytester.makepyfile(test_settings="""
        def test_settings(tidb_cluster_settings):
            assert all(image.startswith("pingcap/") for image in tidb_cluster_settings.images.values())
            assert not tidb_cluster_settings.env
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(("args", "message"), [
    (["--standin-bugs", "48303"], "*--standin-bugs needs --standin*"),
    (["--standin", "--standin-bugs", "12345"], "*unknown bug mode(s) 12345*"),
])
def test_bad_switches_are_usage_errors(pytester: pytest.Pytester, repo_conftest: None,
                                       args: list[str], message: str) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
