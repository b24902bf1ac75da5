"""Collection keeps fewer objects, and changes nothing else (issue 13 goal 1).

A case file's items share one :class:`Topology` object per distinct cluster (the one
the file's checks computed, equal to ``required_topology``); the plugin's item pass
runs with the cyclic collector paused and leaves it on, also when it refuses markers.
"""

from __future__ import annotations

import gc

import pytest

CASES = """\
cases:
  - {name: one, faultType: kill, selector: "tikv(random)", faultDuration: 10s}
  - {name: two, faultType: pause, selector: "tikv(random)", faultDuration: 10s}
  - {name: three, faultType: network_partition, selector: "pdleader_to_pdfollower(all)",
     faultDuration: 10s}
  - {name: four, faultType: network_partition, selector: "pdleader_to_pdfollower(all)",
     faultDuration: 10s}
"""

SHOW = """
import gc

from pytest_tidb_ha.plugin import TOPOLOGY_KEY
from pytest_tidb_ha.scenario.needs import required_topology
from pytest_tidb_ha.stash import CASE_KEY


def pytest_collection_finish(session):
    print("GC", gc.isenabled())
    for item in session.items:
        topology = item.stash[TOPOLOGY_KEY]
        expected = required_topology(item.stash[CASE_KEY])
        print("TOPO", item.name, id(topology), topology == expected, topology)
"""


def test_equal_clusters_are_one_object_and_the_required_one(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=CASES)
    pytester.makeconftest(SHOW)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    rows = {parts[1]: parts[2:] for line in result.stdout.lines
            if line.startswith("TOPO ") and (parts := line.split(maxsplit=4))}
    assert set(rows) == {"one", "two", "three", "four"}
    assert all(row[1] == "True" for row in rows.values())  # == required_topology(case)
    assert rows["one"][0] == rows["two"][0]  # equal clusters: one object
    assert rows["three"][0] == rows["four"][0]
    assert rows["one"][2] != rows["three"][2]  # pd=3 for the PD partition
    assert rows["one"][0] != rows["three"][0]
    assert "GC True" in result.stdout.lines


def test_the_item_pass_leaves_the_collector_on_when_it_refuses(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.fault("no_such_fault", selector="tikv(random)", duration="10s")
def test_x(tidb_cluster):
    pass
''')
    assert gc.isenabled()
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid markers*", "*no_such_fault*"])
    assert gc.isenabled()
