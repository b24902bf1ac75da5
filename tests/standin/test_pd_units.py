"""Pure parts of the PD role and the shared helpers (no Docker): store states, Go
renderings in PD's JSON, TiDB's log line format, the time scale."""

from __future__ import annotations

import logging
import re

import pytest
import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from common import env, gofmt
from common.etcd import prefix_end
from common.log import TiDBFormatter, quote
from pd.stores import StoreThresholds, state_name, store_info, stores_response


def test_store_state_by_heartbeat_age() -> None:
    t = StoreThresholds(disconnected_after=3.0, down_after=9.0)
    record = {"id": 1, "address": "tikv-0:20160", "last_heartbeat": 100.0}
    assert [state_name(record, 100.0 + age, t) for age in (0, 2.9, 3.1, 8.9, 9.1)] == [
        "Up", "Up", "Disconnected", "Disconnected", "Down"]
    assert state_name({**record, "state_name": "Tombstone"}, 500.0, t) == "Tombstone"


def test_thresholds_scale_with_floors(monkeypatch: pytest.MonkeyPatch) -> None:
    for scale, expected in (("1", (20.0, 1800.0)), ("0.005", (3.0, 9.0)), ("0.0001", (3.0, 6.0))):
        monkeypatch.setenv("STANDIN_TIME_SCALE", scale)
        env.time_scale.cache_clear()
        t = StoreThresholds.from_config(1800.0)
        assert (round(t.disconnected_after, 6), round(t.down_after, 6)) == expected
    env.time_scale.cache_clear()


def test_store_info_has_pd_shape() -> None:
    record = {"id": 2, "address": "tikv-1:20160", "status_address": "tikv-1:20180", "version": "7.5.0",
              "start_timestamp": 1000, "last_heartbeat": 1061.5, "capacity": 2 * 1024**3, "used_size": 0,
              "labels": {"zone": "z1"}}
    info = store_info(record, 1062.0, StoreThresholds(3.0, 9.0))
    assert info["store"]["state_name"] == "Up"
    assert info["store"]["labels"] == [{"key": "zone", "value": "z1"}]
    assert info["status"]["capacity"] == "2GiB"
    assert info["status"]["uptime"] == "1m1.5s"
    body = stores_response([record, {**record, "id": 1, "address": "tikv-0:20160"}], 1062.0,
                           StoreThresholds(3.0, 9.0))
    assert body["count"] == 2
    assert [s["store"]["id"] for s in body["stores"]] == [1, 2]


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.25, "250ms"), (1.5, "1.5s"), (61.5, "1m1.5s"), (3600, "1h0m0s"), (3723, "1h2m3s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert gofmt.go_duration(seconds) == text


def test_go_sizes_and_times() -> None:
    assert [gofmt.bytes_size(n) for n in (0, 1023, 1536, 5 * 1024**3)] == ["0B", "1023B", "1.5KiB", "5GiB"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", gofmt.go_time(1700000000.25))


def test_log_line_has_tidb_format() -> None:
    record = logging.LogRecord("standin.pd", logging.WARNING, "/opt/standin/pd/server.py", 42,
                               "PD failed to respond", None, None)
    record.fields = {"endpoint": "http://pd-0:2379", "error": "timed out", "n": 3}
    line = TiDBFormatter().format(record)
    assert re.fullmatch(
        r'\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d\] \[WARN\] \[server\.py:42\] '
        r'\["PD failed to respond"\] \[endpoint=http://pd-0:2379\] \[error="timed out"\] \[n=3\]', line)
    assert quote("plain") == "plain"
    assert quote('a "b"') == '"a \\"b\\""'


def test_time_scale_and_bugs_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_TIME_SCALE", "nonsense")
    monkeypatch.setenv("STANDIN_BUGS", "48303, #46735")
    env.time_scale.cache_clear()
    env.bugs.cache_clear()
    try:
        assert env.time_scale() == 1.0
        assert env.bug_enabled(48303)
        assert env.bug_enabled("46735")
        assert not env.bug_enabled("48546")
        assert env.scaled(0.001, 0.2) == 0.2
    finally:
        env.time_scale.cache_clear()
        env.bugs.cache_clear()


def test_prefix_end() -> None:
    assert prefix_end("/a/") == b"/a0"
    assert prefix_end(b"a\xff") == b"b"
