"""Judging a measured fault effect (pure): what proves it, what contradicts it."""

from __future__ import annotations

import json

import pytest

from pytest_tidb_ha.faults.verify import (
    judge_delay,
    judge_free,
    judge_fsync,
    judge_killed,
    judge_loss,
    judge_partition,
    judge_pause,
    judge_restarted,
    judge_shaped,
    loss_probes,
    parse_probe,
    probe_budget,
    probe_script,
)


def res(*outcomes: tuple[str, float | None]) -> dict[str, list[tuple[str, float | None]]]:
    return {"10.0.0.2:2379": list(outcomes)}


def test_partition_verified_only_when_every_attempt_times_out() -> None:
    assert judge_partition(res(("timeout", None), ("timeout", None)), "a -> b").ok is True
    crossed = judge_partition(res(("timeout", None), ("ok", 0.001)), "a -> b")
    assert crossed.ok is False
    assert "crossed the cut" in crossed.detail
    # a refusal (RST) came back across the cut: not cut either
    assert judge_partition(res(("refused", 0.001),), "a -> b").ok is False
    assert judge_partition(res(("error:101", None),), "a -> b").ok is None
    assert judge_partition({}, "a -> b").ok is None


def test_delay_needs_handshakes_near_the_latency() -> None:
    slow = judge_delay(res(("ok", 0.21), ("refused", 0.2), ("ok", 0.25)), 0.2, 0.0, "a -> b")
    assert slow.ok is True
    assert slow.measured["rtt_ms"] == 210.0
    fast = judge_delay(res(("ok", 0.002), ("ok", 0.003), ("ok", 0.002)), 0.2, 0.0, "a -> b")
    assert fast.ok is False
    assert "<" in fast.detail
    assert judge_delay(res(("ok", 0.13),), 0.2, 0.05, "a -> b").ok is True  # latency - jitter
    assert judge_delay(res(("timeout", None),), 0.2, 0.0, "a -> b").ok is None


def test_loss_needs_losses_unless_none_was_likely() -> None:
    assert judge_loss(res(("ok", 0.001), ("timeout", None)), 30, "a -> b").ok is True
    none_lost = res(*[("ok", 0.001)] * loss_probes(30))
    assert judge_loss(none_lost, 30, "a -> b").ok is False
    # 1% loss over 20 tries loses nothing 82% of the time: that proves nothing either way
    assert judge_loss(res(*[("ok", 0.001)] * 20), 1, "a -> b").ok is None


@pytest.mark.parametrize(("percent", "n"), [(30, 20), (10, 66), (5, 135), (1, 200)])
def test_loss_probe_count_bounds_the_false_alarm(percent: float, n: int) -> None:
    assert loss_probes(percent) == n


def test_pause_state_and_the_stalled_request() -> None:
    assert judge_pause("paused", ["stalled"], "tidb-0").ok is True
    assert judge_pause("paused", [], "tidb-0").ok is True  # the state alone is Docker's word
    assert judge_pause("running", ["stalled"], "tidb-0").ok is False
    assert judge_pause("paused", ["answered"], "tidb-0").ok is False


def test_kill_restart_fsync_free_and_shaping() -> None:
    assert judge_killed("exited", 0, "tikv-0").ok is True
    assert judge_killed("running", 123, "tikv-0").ok is False
    assert judge_restarted("t1", "t2", "running", "tidb-0").ok is True
    assert judge_restarted("t1", "t1", "running", "tidb-0").ok is False
    assert judge_fsync(0.26, 0.25, "tikv-0").ok is True
    assert judge_fsync(0.002, 0.25, "tikv-0").ok is False
    assert judge_free(10 * 2**20, 10 * 2**20, "tikv-0").ok is True
    assert judge_free(200 * 2**20, 10 * 2**20, "tikv-0").ok is False
    classes = ("class htb 7e57:4 root prio 0 rate 1Mbit ceil 1Mbit burst 1600b cburst 1600b\n"
               "class htb 7e57:1 root prio 0 rate 10Gbit ceil 10Gbit burst 0b cburst 0b")
    assert judge_shaped(classes, 1e6, "tikv-0").ok is True
    assert judge_shaped(classes, 5e5, "tikv-0").ok is False


def test_probe_budget_stays_inside_the_window() -> None:
    assert probe_budget(0.5) == 0.2
    assert probe_budget(2.0) == 0.5
    assert probe_budget(600) == 1.0


def test_the_probe_program_runs_and_reports(tmp_path: object) -> None:
    """The probe itself, on this machine's loopback: a closed port answers with a refusal."""
    import socket
    import subprocess
    import sys

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    script = probe_script(sys.executable, [("127.0.0.1", port)], 3, 0.5)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    results = parse_probe(out.stdout)
    assert [o for o, _ in results[f"127.0.0.1:{port}"]] == ["refused"] * 3
    assert json.loads(out.stdout)  # one JSON line
