"""The dry-run plan shows each job's stall and cancel window and the floor that set it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pytest_tidb_ha.scenario.durations import parse_duration

SEEDS = Path(__file__).resolve().parents[2] / "scenarios" / "seeds"


def test_seed_windows_at_time_scale_005_respect_the_cluster_timers(
        pytester: pytest.Pytester) -> None:
    """Issue acceptance: at --ha-time-scale 0.05 against v8.5.7 every job's stall window is
    at least the 60 s a real cluster needs (owner session TTL), and names its floor."""
    shutil.copytree(SEEDS, pytester.path / "seeds")
    result = pytester.runpytest("seeds", "--ha-dry-run", "--tidb-version", "v8.5.7",
                                "--ha-time-scale", "0.05", "-q")
    result.assert_outcomes(passed=3)
    text = result.stdout.str()
    stalls = re.findall(r"^    stall window (\S+) \((.*)\)$", text, re.M)
    cancels = re.findall(r"^    cancel window (\S+) \((.*)\)$", text, re.M)
    assert len(stalls) == len(cancels) == 3, text
    for duration, why in stalls + cancels:
        assert parse_duration(duration).seconds >= 60.0, (duration, why)
        assert why.startswith("floor: "), why
        assert "[table v8.5]" in why, why
    assert "DDL owner etcd session TTL 1m" in text  # the owner kill of #46735
    # #48546's trigger (TiDB's etcd session expiring) cannot happen in a 6 s partition
    assert re.search(r"warning: fault 1 network_partition on pdleader_to_pdfollower\(all\): its "
                     r"6s window is shorter than DDL owner etcd session TTL", text), text
