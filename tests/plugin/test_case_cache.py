"""Collection through the case cache: same items, never stale, options checked every run;
YAML cases share one fixture resolution per file without mixing files' fixtures."""

from __future__ import annotations

import textwrap

import pytest

from pytest_tidb_ha.casecache import CACHE_NAME
from pytest_tidb_ha.plugin import CASE_CACHE_KEY

CASES = """\
cases:
  - name: first
    faultType: kill
    selector: tikv(5)
    faultDuration: 1m
  - name: second
"""


def _collect(pytester: pytest.Pytester, *args: str) -> tuple[list[str], pytest.HookRecorder]:
    rec = pytester.inline_run("--collect-only", "-q", *args)
    items = [item.nodeid for item in rec.getcalls("pytest_collection_finish")[0].session.items]
    return items, rec


def _counts(rec: pytest.HookRecorder) -> tuple[int, int]:
    config = rec.getcalls("pytest_collection_finish")[0].session.config
    cache = config.stash[CASE_CACHE_KEY]
    assert cache is not None
    return cache.misses, cache.hits


def test_second_collection_reads_the_cache(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=CASES)
    first, rec1 = _collect(pytester, "--tidb-topology", "tikv=5")
    second, rec2 = _collect(pytester, "--tidb-topology", "tikv=5")
    assert first == second == ["cases.yaml::first", "cases.yaml::second"]
    assert _counts(rec1) == (1, 0)
    assert _counts(rec2) == (0, 1)
    assert len(list((pytester.path / ".pytest_cache" / "d" / CACHE_NAME).iterdir())) == 1


def test_an_edited_file_is_read_again(pytester: pytest.Pytester) -> None:
    path = pytester.makefile(".yaml", cases=CASES)
    _collect(pytester, "--tidb-topology", "tikv=5")
    path.write_text(CASES.replace("second", "third"))
    items, rec = _collect(pytester, "--tidb-topology", "tikv=5")
    assert items == ["cases.yaml::first", "cases.yaml::third"]
    assert _counts(rec) == (1, 0)


def test_option_checks_run_on_cached_cases(pytester: pytest.Pytester) -> None:
    """The cache holds what the file says; whether the session's options allow it is
    checked every time (here: tikv(5) needs --tidb-topology tikv=5)."""
    pytester.makefile(".yaml", cases=CASES)
    assert pytester.runpytest("--collect-only", "-q", "--tidb-topology", "tikv=5").ret == 0
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["cases.yaml:4: selector tikv(5): tikv(5) needs 5 node(s)*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_a_bad_file_fails_every_run(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=CASES.replace("faultDuration: 1m", "faultDuration: soon"))
    for _ in range(2):
        result = pytester.runpytest("--collect-only", "-q", "--tidb-topology", "tikv=5")
        result.stdout.fnmatch_lines(["cases.yaml:5: faultDuration: 'soon' is not a duration*"])
        assert result.ret == pytest.ExitCode.INTERRUPTED


def test_without_the_cache_provider_nothing_is_kept(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=CASES)
    items, rec = _collect(pytester, "-p", "no:cacheprovider", "--tidb-topology", "tikv=5")
    config = rec.getcalls("pytest_collection_finish")[0].session.config
    assert items == ["cases.yaml::first", "cases.yaml::second"]
    assert config.stash[CASE_CACHE_KEY] is None
    assert not (pytester.path / ".pytest_cache").exists()


#: Each folder's conftest gives the cases its own cluster; a config list makes a second
#: parent inside one file.
FIXTURE_CONFTEST = """
import sys, types
import pytest

fake = types.ModuleType("pytest_tidb_ha.runner")
def run_case(case, *, cluster, record, options):
    with open({out!r}, "a") as fh:
        fh.write(f"{{case.id}} {{cluster}} {{record.case_id}}\\n")
fake.run_case = run_case
sys.modules["pytest_tidb_ha.runner"] = fake

@pytest.fixture
def tidb_cluster():
    return {cluster!r}
"""

CONFIG_LIST = """\
- name: alpha
  default: |
    cases:
      - name: a1
      - name: a2
- name: beta
  default: |
    cases:
      - name: b1
"""


def test_each_file_gets_its_own_folders_fixtures(pytester: pytest.Pytester) -> None:
    out = pytester.path / "ran.txt"
    for folder, cluster in (("east", "cluster-east"), ("west", "cluster-west")):
        pytester.mkpydir(folder)
        (pytester.path / folder / "conftest.py").write_text(
            FIXTURE_CONFTEST.format(out=str(out), cluster=cluster))
        (pytester.path / folder / "cases.yaml").write_text("cases:\n  - name: one\n  - name: two\n")
    (pytester.path / "west" / "configs.yaml").write_text(CONFIG_LIST)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)
    ran = sorted(out.read_text().splitlines())
    assert ran == sorted([
        "cases::one cluster-east cases::one", "cases::two cluster-east cases::two",
        "cases::one cluster-west cases::one", "cases::two cluster-west cases::two",
        "configs::alpha::a1 cluster-west configs::alpha::a1",
        "configs::alpha::a2 cluster-west configs::alpha::a2",
        "configs::beta::b1 cluster-west configs::beta::b1",
    ]), textwrap.indent("\n".join(ran), "  ")
