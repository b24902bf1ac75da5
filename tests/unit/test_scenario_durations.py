from __future__ import annotations

import pytest

from pytest_tidb_ha.scenario.durations import (
    DurationError,
    format_seconds,
    parse_duration,
    parse_period,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("1m", 60),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1m30s", 90),
        ("1.5m", 90),
        ("2h", 7200),
        (" 3m ", 180),
        (90, 90),
        (1.5, 1.5),
        ("45", 45),
        ("0s", 0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text).seconds == pytest.approx(seconds)


def test_text_is_kept_for_reports() -> None:
    assert str(parse_duration("1h30m")) == "1h30m"
    assert str(parse_duration(90)) == "90s"


def test_every_is_a_period() -> None:
    period = parse_period("@every 5m")
    assert period.seconds == 300
    assert str(period) == "@every 5m"
    assert parse_period("5m").seconds == 300


def test_every_is_not_a_plain_duration() -> None:
    with pytest.raises(DurationError, match="only allowed for a period"):
        parse_duration("@every 5m")


def test_negative_is_parsed_so_the_caller_can_name_the_field() -> None:
    assert parse_duration("-1m").seconds == -60


@pytest.mark.parametrize("bad", ["", "5 minutes", "1x", "m", "1m 30s", "1d", True, None, [1], "nan",
                                 "@every", "@every soon"])
def test_bad_durations_name_the_value(bad: object) -> None:
    with pytest.raises(DurationError) as info:
        parse_period(bad)
    assert repr(bad) in str(info.value) or repr(str(bad).strip()) in str(info.value) \
        or "soon" in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.6, "600ms"), (36.6, "36.6s"), (60, "1m"), (3660, "1h1m"), (5400, "1h30m"),
     (72.6, "1m12.6s"), (59, "59s")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
