"""Collection of QA's file shapes: config lists, bare lists, and QA-looking files that are no cases."""

from __future__ import annotations

import textwrap

import pytest

CONFIG_LIST = """\
- name: config_a
  default: |
    cases:
      - name: "one"
        faultType: kill
        selector: "tikv(random)"
        faultDuration: 1m
      - name: "two"
        faultType: kill
        selector: "tidb(random)"
        faultDuration: 1m
- name: config_b
  default: |
    cases:
      - name: "one"
        faultType: network_partition
        selector: "pd(leader)_to_all"
        faultDuration: 1m
"""


def test_config_list_one_item_per_case_of_each_config(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", configs=CONFIG_LIST)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "configs.yaml::config_a::one",
        "configs.yaml::config_a::two",
        "configs.yaml::config_b::one",
        "3 tests collected*",
    ])


def test_a_config_item_is_selected_by_its_id(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", configs=CONFIG_LIST)
    result = pytester.runpytest("--ha-dry-run", "-q", "configs.yaml::config_b::one")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "configs::config_b::one  [[]configs.yaml:15[]]",
        "  topology: pd=3,tikv=1,tidb=1",
        "  fault 1: network_partition on pd(leader)_to_all (direction=both); one-shot at 0s for "
        "1m  [[]configs.yaml:17[]]",
    ])


def test_a_bare_list_of_cases_collects(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yml", bare=textwrap.dedent("""\
                - name: "ha_pdleader_kill"
                  warmUpTime: 5m
                  faultType: kill
                  selector: "pd(leader)"
                  faultDuration: 1m
        """))
    result = pytester.runpytest("--ha-dry-run", "-q", "bare.yml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["bare::ha_pdleader_kill*", "  workload: none"])


@pytest.mark.parametrize(("text", "line"), [
    ("name: lonely\nfaultType: kill\nselector: tidb\nfaultDuration: 1m\n",
     "qa.yaml:2: this file carries QA case keys (faultType on line 2) but cannot be read as "
     "cases*"),
    ("- name: a\n  faultType: kill\n  selector: tidb\n  faultDuration: 1m\n- 3\n",
     "qa.yaml:5: this list item is not a case*"),
    ("cases:\n  - name: c\n    <<: 3\n", "qa.yaml:3: a merge key (<<) takes a mapping*"),
    ("cases:\n  - name: c\n    faultType: [kill\n", "qa.yaml:4: malformed YAML*"),
])
def test_qa_looking_files_are_never_skipped(pytester: pytest.Pytester, text: str,
                                            line: str) -> None:
    (pytester.path / "qa.yaml").write_text(text)
    pytester.makefile(".yaml", k8s="kind: Service\nspec:\n  selector: {app: x}\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting qa.yaml*", line])
    assert "k8s.yaml" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_a_qa_file_that_is_not_utf8_is_an_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "qa.yaml").write_bytes(b"cases:\n  - name: \xff\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*qa.yaml: cannot read this QA case file*"])
