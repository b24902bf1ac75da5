"""The TiDB's server-registry entry: its last write carries its last state (no Docker).

CI20 failed ``test_fixed_standin_converges[48303]``: ADD INDEX #4 stayed at ``delete only``
for a minute with no transaction holding its table. The owner waits for every TiDB's
registry entry to show the new schema version, and without a deadline while an entry says
it holds the version back for a metadata lock (``mdl_wait``). Two threads write the entry:
the schema loop (``publish``, on a new version) and the campaign loop (each tick, when the
entry changed). Unserialised, the campaign's write of the older state (old version,
``mdl_wait`` set) could land after the schema loop's newer one, and the entry stayed old.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from tidb.owner import SERVERS_PREFIX, OwnerManager

KEY = SERVERS_PREFIX + "ddl-1"


class Session:
    alive = True
    lease_id = 1


class Etcd:
    """Stores puts; with ``hold_first`` the first one waits for ``release`` (a write slow
    to land)."""

    def __init__(self, hold_first: bool = True) -> None:
        self.store: dict[str, Any] = {}
        self.hold_first = hold_first
        self.release = threading.Event()
        self.first_put_started = threading.Event()
        self.puts = 0
        self._lock = threading.Lock()

    def put(self, key: str, value: str, lease: int = 0) -> None:
        with self._lock:
            self.puts += 1
            first = self.puts == 1 and self.hold_first
        if first:
            self.first_put_started.set()
            assert self.release.wait(10), "the test never released the first write"
        with self._lock:
            self.store[key] = json.loads(value)

    def get_prefix(self, prefix: str) -> list[Any]:
        return []


def test_a_write_of_an_older_state_never_lands_after_a_newer_one() -> None:
    state = {"schema_version": 27, "mdl_wait": [5]}
    etcd = Etcd()
    owner = OwnerManager(etcd, [], "ddl-1", lambda: dict(state), campaign=False)  # type: ignore[arg-type]
    owner.session = Session()  # type: ignore[assignment]
    campaign = threading.Thread(target=owner._step)  # the campaign tick: writes the old state
    campaign.start()
    assert etcd.first_put_started.wait(10)
    state.update(schema_version=28, mdl_wait=[])  # the schema loop adopts the new version
    schema_loop = threading.Thread(target=owner.publish)
    schema_loop.start()
    schema_loop.join(0.5)  # unserialised, it has written by now; serialised, it waits
    etcd.release.set()
    campaign.join(10)
    schema_loop.join(10)
    assert etcd.store[KEY] == {"schema_version": 28, "mdl_wait": []}


def test_an_unchanged_entry_is_written_again_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write the client gave up on may still land after a newer one: an unchanged entry
    is written again every few seconds, so a stale one does not last."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])  # the owner's clock
    etcd = Etcd(hold_first=False)
    owner = OwnerManager(etcd, [], "ddl-1", lambda: {"schema_version": 3}, campaign=False)  # type: ignore[arg-type]
    owner.session = Session()  # type: ignore[assignment]
    owner._step()
    owner._step()
    assert etcd.puts == 1  # unchanged: not written at every tick
    etcd.store[KEY] = {"schema_version": 2}  # a late write of an older state lands
    now[0] += 10.0
    owner._step()
    assert etcd.puts == 2
    assert etcd.store[KEY] == {"schema_version": 3}
