"""The error catalog on messages recorded from the seeds and the reference (§8)."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.jobs.catalog import ErrorInfo, classify, parse_error


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("Error 1105 (HY000): mutex: session is expired", 1105, "mutex: session is expired"),
        ("(9005, 'Region is unavailable')", 9005, "Region is unavailable"),
        ("ERROR 8214 (HY000): Cancelled DDL job", 8214, "Cancelled DDL job"),
        ("[global:2]execution result undetermined", 2, "[global:2]execution result undetermined"),
        ("context deadline exceeded", None, "context deadline exceeded"),
    ],
)
def test_parse_error_shapes(text: str, code: int | None, message: str) -> None:
    err = parse_error(text)
    assert err == ErrorInfo(code, message)


def test_parse_none() -> None:
    assert parse_error(None) is None


@pytest.mark.parametrize(
    "err",
    [
        ErrorInfo(9001, "PD server timeout"),
        ErrorInfo(9005, "Region is unavailable"),
        ErrorInfo(8028, "Information schema is changed"),
        ErrorInfo(8201, "TiDB server is not a DDL owner"),
        ErrorInfo(1105, "rpc error: context deadline exceeded"),
        ErrorInfo(1105, "mvcc: required revision has been compacted"),
    ],
)
def test_sensible_allow_list(err: ErrorInfo) -> None:
    assert classify(err).category == "sensible"


@pytest.mark.parametrize(
    ("err", "issue"),
    [
        (ErrorInfo(2, "[global:2]execution result undetermined"), 49556),
        (ErrorInfo(1105, "etcdserver: request timed out, possibly due to connection lost"), 48862),
        (ErrorInfo(1105, "etcdserver: requested lease not found"), 56550),
        (ErrorInfo(1105, "[pd] failed to get cluster id"), 48064),
        (ErrorInfo(1105, "[Lightning:PD:ErrCreatePDClient]create pd client error"), 51103),
        (ErrorInfo(1105, "mutex: session is expired"), 48546),
        # a sensible code does not excuse a filed bug's signature
        (ErrorInfo(9001, "PD server timeout: etcdserver: request timed out"), 48862),
    ],
)
def test_filed_ha_bug_signatures_are_unexpected_and_name_their_issue(err: ErrorInfo,
                                                                     issue: int) -> None:
    cls = classify(err)
    assert cls.category == "unexpected"
    assert f"#{issue}" in cls.rule
    assert cls.issue == issue


def test_a_case_allows_a_known_bug_by_its_text_or_its_issue() -> None:
    err = ErrorInfo(1105, "etcdserver: request timed out, possibly due to connection lost")
    by_text = classify(err, allow_errors=[r"request timed out"])
    by_issue = classify(err, allow_errors=[r"#48862"])
    assert by_text.category == by_issue.category == "sensible"
    assert classify(err, allow_errors=[r"#48546"]).category == "unexpected"


def test_code_is_matched_before_message() -> None:
    # 9005 is sensible whatever its text says
    assert classify(ErrorInfo(9005, "strange wording")).rule == "code 9005"


@pytest.mark.parametrize(
    "err",
    [
        ErrorInfo(1105, "mutex: session is expired"),  # #48546: must be retried by the fix
        ErrorInfo(8247, "ingest engine not found"),
        ErrorInfo(1105, "unknown step -1 for import task"),
        ErrorInfo(1105, "task manager is not initialized"),
        ErrorInfo(1105, "lock held by current process"),
        ErrorInfo(8133, "data inconsistency in table: t, index: i, index-count:1 != record-count:2"),
        ErrorInfo(8223, "data inconsistency"),
        ErrorInfo(1105, "something nobody has seen"),
    ],
)
def test_bug_signals_are_unexpected(err: ErrorInfo) -> None:
    assert classify(err).category == "unexpected"


def test_allow_errors_regex_excuses_internal_errors_but_not_inconsistency() -> None:
    assert classify(ErrorInfo(1105, "mutex: session is expired"),
                    allow_errors=[r"session is\s+expired"]).category == "sensible"
    assert classify(ErrorInfo(8133, "data inconsistency in table"),
                    allow_errors=[".*"]).category == "unexpected"
    # the code is part of the searched text
    assert classify(ErrorInfo(1234, "x"), allow_errors=["^1234 "]).category == "sensible"


def test_bad_regex_is_a_literal() -> None:
    assert classify(ErrorInfo(1105, "weird [ thing"), allow_errors=["weird ["]).category \
        == "sensible"


def test_cancel_only_sensible_when_the_test_cancelled() -> None:
    err = ErrorInfo(8214, "Cancelled DDL job")
    assert classify(err).category == "unexpected"
    assert classify(err, cancelled_by_test=True).category == "sensible"


@pytest.mark.parametrize("code", [2013, 2006, 2003])
def test_connection_errors(code: int) -> None:
    assert ErrorInfo(code, "Lost connection to MySQL server during query").is_connection_error
    assert not ErrorInfo(1105, "mutex: session is expired").is_connection_error
