"""#48546's trigger in the ingest flush (no Docker): every flush asks its session whether the
lease renews now, so a flush overlapping a cut PD member meets it — counted in any mode; bug
mode then waits for the lease to run out and hands the expired session to the lock (which
fails ``mutex: session is expired``); fixed mode waits for a session that renews."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from tidb import backfill, triggers
from tidb.backfill import BackfillError, distributed_lock, flush_session


class Session:
    """A lease whose member answers renewals from a script (``True`` = renewed)."""

    def __init__(self, answers: list[bool], lease_id: int = 0x2A) -> None:
        self.answers = answers
        self.lease_id = lease_id
        self.expired = threading.Event()
        self.asked = 0

    @property
    def alive(self) -> bool:
        return not self.expired.is_set()

    def renews(self) -> bool:
        self.asked += 1
        if not self.answers:  # the member stays cut off: the lease runs out
            self.expired.set()
            return False
        return self.answers.pop(0)


class Owner:
    def __init__(self, session: Session) -> None:
        self.session = session


class Node:
    def __init__(self, session: Session) -> None:
        self.owner = Owner(session)


@pytest.fixture
def bugs(monkeypatch: pytest.MonkeyPatch) -> object:
    def switch(*ids: str) -> None:
        monkeypatch.setattr(backfill, "bug_enabled", lambda b: str(b) in ids)

    return switch


def count() -> int:
    return triggers.counts()["48546"]


def test_a_renewing_session_is_no_trigger(bugs: object) -> None:
    bugs("48546")  # type: ignore[operator]
    sess: Any = Session([True])
    before = count()
    assert flush_session(Node(sess), 1, sess, lambda: False) is sess  # type: ignore[arg-type]
    assert count() == before
    assert cast("Any", sess).asked == 1  # narrowed by the identity check above


def test_bug_mode_waits_for_the_lease_to_run_out_and_the_lock_fails(bugs: object) -> None:
    bugs("48546")  # type: ignore[operator]
    sess: Any = Session([False, False])  # cut off at the flush; never renews again
    before = count()
    got = flush_session(Node(sess), 1, sess, lambda: False)  # type: ignore[arg-type]
    assert count() == before + 1
    assert got is sess
    assert not got.alive
    with pytest.raises(BackfillError, match="mutex: session is expired"):
        distributed_lock(Node(sess), 1, got)  # type: ignore[arg-type]


def test_fixed_mode_waits_until_the_session_renews_again(bugs: object) -> None:
    bugs()  # type: ignore[operator]
    sess: Any = Session([False, False, True])  # the cut heals before the lease runs out
    before = count()
    got = flush_session(Node(sess), 1, sess, lambda: False)  # type: ignore[arg-type]
    assert count() == before + 1
    assert got is sess
    assert got.alive
    assert cast("Any", sess).asked == 3  # narrowed by the identity check above
