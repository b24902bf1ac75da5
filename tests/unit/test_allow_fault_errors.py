"""How a case says its faults may fail to apply (YAML ``expect`` / the fault marker)."""

from __future__ import annotations

import textwrap

import pytest

from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.markers import case_from_markers

CASE = """
cases:
  - name: a
    faultType: kill
    selector: tikv(one)
    faultDuration: 1m
    expect:
      allowFaultErrors: {value}
"""


def test_yaml_expect_allow_fault_errors() -> None:
    (case,) = load_text(textwrap.dedent(CASE.format(value="true")), "c.yaml") or ()
    assert case.expect.allow_fault_errors is True
    (case,) = load_text(textwrap.dedent(CASE.replace("    expect:\n      allowFaultErrors: "
                                                     "{value}\n", "")), "c.yaml") or ()
    assert case.expect.allow_fault_errors is False


def test_yaml_allow_fault_errors_must_be_a_flag() -> None:
    with pytest.raises(ScenarioError, match=r"c.yaml:8: .*allowFaultErrors"):
        load_text(textwrap.dedent(CASE.format(value="sometimes")), "c.yaml")


def test_marker_allow_fault_errors_is_per_fault() -> None:
    case = case_from_markers("t.py::x", "x", faults=[
        (("kill",), {"selector": "tikv(one)", "duration": "1m", "allow_fault_errors": True}),
        (("pause",), {"selector": "tidb(one)", "duration": "1m"})])
    assert [f.allow_errors for f in case.faults] == [True, False]
    with pytest.raises(ScenarioError, match="allow_fault_errors must be True or False"):
        case_from_markers("t.py::x", "x", faults=[
            (("kill",), {"selector": "tikv(one)", "duration": "1m",
                         "allow_fault_errors": "yes"})])
