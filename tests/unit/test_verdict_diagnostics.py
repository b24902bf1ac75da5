"""The diagnostics bundle: every piece bounded, failures noted, secrets redacted."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pytest_tidb_ha.jobs.diagnostics import collect, error_lines
from pytest_tidb_ha.timeline import Timeline

if TYPE_CHECKING:
    from pytest_tidb_ha.jobs.submit import SQLClient


class Client:
    def __init__(self) -> None:
        self.release = threading.Event()

    def query(self, sql: str, args: Any = None, **kw: Any) -> list[dict[str, Any]]:
        if sql.startswith("ADMIN SHOW DDL JOBS"):
            self.release.wait(5)  # hangs past the deadline
            return []
        if sql.startswith("SHOW IMPORT JOBS"):
            raise RuntimeError("(1105) unknown statement")
        if sql == "ADMIN SHOW DDL":
            return [{"OWNER_ID": "x", "QUERY": b"import into t from 's3://b?secret-access-key=SK'"}]
        return [{"id": 1, "meta": b"\x00\x01"}]


class Node:
    def __init__(self, name: str) -> None:
        self.name = name


class Cluster:
    docker = object()
    nodes: ClassVar[list[Node]] = [Node("tidb-0"), Node("pd-0")]

    def pd_urls(self) -> list[str]:
        return []

    def status_urls(self, component: str) -> dict[str, str]:
        return {}

    def logs(self, node: str, tail: int = 200) -> str:
        return "[INFO] fine\n[ERROR] [backfilling_operators.go:751] flush error\nok\n"


def test_error_lines() -> None:
    assert error_lines("a\n[ERROR] x\npanic: y\nb") == ["[ERROR] x", "panic: y"]


def test_bundle_notes_failures_and_redacts(tmp_path: Path) -> None:
    tl = Timeline()
    tl.record("fault.inject", fault_id="f1")
    tl.record("fault.healed", fault_id="f1")
    client = Client()
    notes: list[str] = []
    # a query-only fake: collect only queries
    dest = collect(Cluster(), cast("SQLClient", client), tl, tmp_path / "diag", deadline=0.5,
                   notes=notes)
    client.release.set()
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert {"admin-show-ddl.json", "timeline.json", "faults.json", "index.md",
            "logs/tidb-0.errors.txt", "dxf-tasks.json"} <= files
    assert "flush error" in (dest / "logs/tidb-0.errors.txt").read_text()
    ddl = (dest / "admin-show-ddl.json").read_text()
    assert "SK" not in ddl
    assert "xxxxxx" in ddl
    assert json.loads((dest / "faults.json").read_text())[0]["fault_id"] == "f1"
    index = (dest / "index.md").read_text()
    assert "admin-show-ddl-jobs.json: not collected within" in index
    assert "show-import-jobs.json: RuntimeError" in index
    assert any("admin-show-ddl-jobs.json" in n for n in notes)
