"""No Docker engine: a cluster test fails (or skips) with one clear line; nothing hangs.

No engine is needed to run these: DOCKER_HOST points at a socket that does not exist.
"""

from __future__ import annotations

import pytest

TEST = """
    def test_needs_cluster(tidb_cluster):
        pass
"""
LINE = "*pytest-tidb-ha: no Docker engine answers at unix:///nonexistent*"


@pytest.fixture
def no_engine(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    pytester.makepyfile(TEST)
    return pytester


def test_no_engine_fails_with_one_line(no_engine: pytest.Pytester) -> None:
    result = no_engine.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([LINE])
    text = result.stdout.str()
    assert "Traceback" not in text
    section = text.split("ERROR at setup of test_needs_cluster", 1)[1].splitlines()[1:]
    # The error section runs to the next "=== ... ===" header.
    end = next((i for i, line in enumerate(section) if line.startswith("=")), len(section))
    lines = [line for line in section[:end] if line.strip()]
    assert len(lines) == 1, section
    assert "no Docker engine answers" in lines[0], section


def test_no_engine_skips_when_asked(no_engine: pytest.Pytester) -> None:
    result = no_engine.runpytest_subprocess("--ha-no-docker=skip", "-rs", timeout=60)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([LINE])


def test_dry_run_needs_no_engine(no_engine: pytest.Pytester) -> None:
    result = no_engine.runpytest_subprocess("--ha-dry-run", timeout=60)
    result.assert_outcomes(skipped=1)
    assert "no Docker engine" not in result.stdout.str()
