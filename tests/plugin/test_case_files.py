"""``ha_case_files``: which YAML files are QA case files (globs, like ``python_files``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tidb_ha.casefiles import is_candidate, matches

CASE = "cases:\n  - name: one\n"
#: A data file that happens to have a top-level ``cases:`` (not QA's format).
DATA = "cases: [1, 2]\n"


def test_default_takes_every_yaml_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", a_case=CASE)
    pytester.makefile(".yml", b_case=CASE)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["a_case.yaml::one", "b_case.yml::one", "2 tests collected*"])


def test_narrow_patterns_leave_data_files_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nha_case_files = *_case.yaml\n")
    pytester.makefile(".yaml", ha_case=CASE, data=DATA)
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["ha_case.yaml::one", "*::test_ok", "2 tests collected*"])
    assert result.ret == 0
    assert "data.yaml" not in result.stdout.str()


def test_patterns_with_a_slash_match_the_path(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nha_case_files = scenarios/*.yaml\n")
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "x.yaml").write_text(CASE)
    (pytester.path / "other").mkdir()
    (pytester.path / "other" / "y.yaml").write_text(CASE)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["scenarios/x.yaml::one", "1 test collected*"])


def test_a_file_named_on_the_command_line_is_always_a_candidate(
        pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nha_case_files = *_case.yaml\n")
    pytester.makefile(".yaml", adhoc=CASE)
    result = pytester.runpytest("--collect-only", "-q", "adhoc.yaml")
    result.stdout.fnmatch_lines(["adhoc.yaml::one", "1 test collected*"])


def test_the_option_is_listed_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*ha_case_files (args):*glob patterns of QA case files*"])


def test_matching_rules() -> None:
    root = Path("/repo")
    assert matches(root / "scenarios/seeds/48303.yaml", "*.yaml")
    assert not matches(root / "scenarios/seeds/48303.yaml", "*.yml")
    assert matches(root / "scenarios/seeds/48303.yaml", "seeds/*.yaml")
    assert not matches(root / "data/seeds.yaml", "seeds/*.yaml")
    assert matches(root / "a/b_case.yaml", "*_case.yaml")
    assert is_candidate(root / "x.yaml", ["*_case.yaml"], named=True)
    assert not is_candidate(root / "x.txt", ["*_case.yaml"], named=True)
    assert not is_candidate(root / "x.yaml", ["*_case.yaml"])
