"""IMPORT INTO (reference §3): job rows, the ``ImportInto/<id>`` DXF task, SHOW/CANCEL.

Sources are CSV files under ``/import`` (the folder the cluster mounts into every
TiDB); ``s3://bucket/key-glob?...`` maps to ``/import/<bucket>/<key-glob>`` as a
test double for S3. The URL's credentials never reach a log line or a table:
``parameters`` carries them as ``xxxxxx`` like TiDB does.
"""

from __future__ import annotations

import csv
import datetime as _dt
import glob
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from common.env import scaled
from common.etcd import EtcdError
from common.log import get_logger

from . import codec
from .executor import Result
from .sql import SQLError

if TYPE_CHECKING:
    from .catalog import Table
    from .executor import Session
    from .server import Node

log = get_logger("tidb.importinto")

IMPORT_ROOT = os.environ.get("STANDIN_IMPORT_ROOT", "/import")
SECRET_KEYS = {
    "access-key",
    "secret-access-key",
    "session-token",
    "access_key",
    "secret_access_key",
}
KNOWN_OPTIONS = {
    "skip_rows",
    "thread",
    "detached",
    "character_set",
    "fields_terminated_by",
    "fields_enclosed_by",
    "fields_escaped_by",
    "fields_defined_null_by",
    "lines_terminated_by",
    "split_file",
    "disk_quota",
    "disable_tikv_import_mode",
    "max_write_speed",
    "checksum_table",
    "cloud_storage_uri",
    "disable_precheck",
    "record_errors",
}
SHOW_COLUMNS = [
    ("Job_ID", "int"),
    ("Data_Source", "str"),
    ("Target_Table", "str"),
    ("Table_ID", "int"),
    ("Phase", "str"),
    ("Status", "str"),
    ("Source_File_Size", "str"),
    ("Imported_Rows", "int"),
    ("Result_Message", "str"),
    ("Create_Time", "datetime"),
    ("Start_Time", "datetime"),
    ("End_Time", "datetime"),
    ("Created_By", "str"),
]
TERMINAL = ("finished", "failed", "cancelled")


def redact_location(source: str) -> str:
    """TiDB's redacted file-location: secrets ``xxxxxx``, query keys sorted (Go url.Values.Encode)."""
    parts = urlsplit(source)
    if not parts.query:
        return source
    pairs = sorted(parse_qsl(parts.query, keep_blank_values=True))
    enc = "&".join(
        f"{quote(k, safe='')}={'xxxxxx' if k.lower() in SECRET_KEYS else quote(v, safe='')}"
        for k, v in pairs
    )
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{enc}"


def local_glob(source: str) -> str:
    parts = urlsplit(source)
    if parts.scheme == "s3":
        return os.path.join(IMPORT_ROOT, parts.netloc, parts.path.lstrip("/"))
    if parts.scheme in ("", "file"):
        return parts.path if parts.scheme else source
    raise SQLError(8156, f"unsupported storage scheme {parts.scheme}")


def bytes_size(n: float) -> str:
    """docker/go-units BytesSize (``%.4g`` with binary units), as SHOW IMPORT JOBS prints."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024.0
        i += 1
    return f"{n:.4g}{units[i]}"


def go_json(obj: Any) -> str:
    """json.Marshal-like: compact and ``&<>`` escaped as Go does."""
    text = json.dumps(obj, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _dt_or_none(ts: float | None) -> _dt.datetime | None:
    return None if not ts else _dt.datetime.fromtimestamp(ts)


class Importer:
    def __init__(self, node: Node) -> None:
        self.node = node
        node.dxf.handlers["ImportInto"] = ImportTaskHandler(self)  # type: ignore[assignment]

    def start(self) -> None:
        return None

    # -- storage ------------------------------------------------------------------------
    def get(self, job_id: int) -> tuple[dict[str, Any] | None, int]:
        return self.node.meta.get(f"import/jobs/{job_id:010d}")

    def jobs(self) -> list[dict[str, Any]]:
        return sorted(
            (o for _k, o, _r in self.node.meta.list("import/jobs/")), key=lambda j: j["id"]
        )

    def update(self, job_id: int, **changes: Any) -> None:
        for _ in range(100):
            job, rev = self.get(job_id)
            if job is None:
                return
            job.update(changes)
            job["update_time"] = time.time()
            if self.node.meta.cas(f"import/jobs/{job_id:010d}", job, rev):
                return
        raise EtcdError("too many conflicts updating the import job")

    def table_rows(self) -> list[list[Any]]:
        """mysql.tidb_import_jobs rows (reference §3.5 column order)."""
        out = []
        for j in self.jobs():
            out.append(
                [
                    j["id"],
                    _dt_or_none(j["create_time"]),
                    _dt_or_none(j.get("start_time")),
                    _dt_or_none(j.get("update_time")),
                    _dt_or_none(j.get("end_time")),
                    j["table_schema"],
                    j["table_name"],
                    j["table_id"],
                    j["created_by"],
                    j["parameters"],
                    j["source_file_size"],
                    j["status"],
                    j["step"],
                    go_json(j["summary"]) if j.get("summary") else None,
                    j.get("error_message"),
                ]
            )
        return out

    # -- statements ---------------------------------------------------------------------
    def submit(
        self, t: Table, source: str, fmt: str, options: dict[str, Any], query: str, session: Session
    ) -> Result:
        if fmt != "csv":
            raise SQLError(8157, f"unsupported format '{fmt}' in the stand-in")
        for name in options:
            if name not in KNOWN_OPTIONS:
                raise SQLError(8163, f"Unknown option {name}")
        if session.in_txn:
            raise SQLError(1105, "cannot run IMPORT INTO in explicit transaction")
        pattern = local_glob(source)
        files = sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
        if not files:
            raise SQLError(8158, f"No file matched the pattern {redact_location(source)}")
        prefix = codec.row_prefix(t.id)
        rows, _last = self.node.kv.scan_limited(prefix, codec.prefix_end(prefix), 1)
        if rows:
            raise SQLError(8173, "PreCheck failed: target table is not empty")
        job_id = self.node.meta.next_id("import_job_id")
        now = time.time()
        params = {
            "file-location": redact_location(source),
            "format": fmt,
            "options": {k: (None if v is None else str(v)) for k, v in options.items()},
        }
        job = {
            "id": job_id,
            "create_time": now,
            "start_time": None,
            "update_time": None,
            "end_time": None,
            "table_schema": t.db,
            "table_name": t.name,
            "table_id": t.id,
            "created_by": f"{session.user}@%",
            "parameters": go_json(params),
            "source_file_size": sum(os.path.getsize(f) for f in files),
            "status": "pending",
            "step": "",
            "summary": None,
            "error_message": None,
        }
        self.node.meta.put(f"import/jobs/{job_id:010d}", job)
        skip = int(options.get("skip_rows") or 0)
        local_only = not self.node.sysvar_on("tidb_enable_dist_task") or not source.startswith(
            "s3://"
        )
        self.node.dxf.create_task(
            f"ImportInto/{job_id}",
            "ImportInto",
            {
                "job_id": job_id,
                "table_id": t.id,
                "files": files,
                "skip_rows": skip,
                "node": self.node.exec_id if local_only else "",
            },
            concurrency=int(options.get("thread") or 4),
        )
        log.info(
            "import into job submitted",
            job_id=job_id,
            table=f"{t.db}.{t.name}",
            source=redact_location(source),
        )
        if "detached" in options:
            return self.show(job_id)
        tick = scaled(0.2, 0.05)
        while True:
            try:
                cur, _ = self.get(job_id)
            except EtcdError:
                cur = None
            if cur is not None and cur["status"] in TERMINAL:
                if cur["status"] == "finished":
                    return self.show(job_id)
                if cur["status"] == "cancelled":
                    raise SQLError(1105, "cancelled by user")
                raise SQLError(1105, cur.get("error_message") or "import failed")
            time.sleep(tick)

    def show(self, job_id: int | None) -> Result:
        rows = []
        for j in self.jobs():
            if job_id is not None and j["id"] != job_id:
                continue
            imported: int | None = None
            if j.get("summary"):
                imported = int(j["summary"].get("ImportedRows", 0))
            elif j["status"] == "running":
                task = self.node.dxf.find_task(f"ImportInto/{j['id']}")
                imported = self.node.dxf.rows_of(task) if task else None
            params = json.loads(j["parameters"].replace("\\u0026", "&"))
            rows.append(
                [
                    j["id"],
                    params["file-location"],
                    f"`{j['table_schema']}`.`{j['table_name']}`",
                    j["table_id"],
                    j["step"],
                    j["status"],
                    bytes_size(j["source_file_size"]),
                    imported,
                    j.get("error_message") or "",
                    _dt_or_none(j["create_time"]),
                    _dt_or_none(j.get("start_time")),
                    _dt_or_none(j.get("end_time")),
                    j["created_by"],
                ]
            )
        if job_id is not None and not rows:
            raise SQLError(8170, f"Job ID {job_id} doesn't exist")
        return Result(list(SHOW_COLUMNS), rows)

    def cancel(self, job_id: int) -> None:
        job, _ = self.get(job_id)
        if job is None:
            raise SQLError(8170, f"Job ID {job_id} doesn't exist")
        if job["status"] not in ("pending", "running"):
            # pkg/executor/import_into.go checkPrivilegeAndStatus:
            # ErrLoadDataInvalidOperation.FastGenByArgs("CANCEL")
            raise SQLError(8171, "The current job status cannot perform the operation. CANCEL")
        task = self.node.dxf.find_task(f"ImportInto/{job_id}")
        if not self.node.surface.import_cancel_waits:
            # v7.5.0 (pkg/executor/importer/job.go CancelJob): the row says cancelled at once,
            # in the transaction that cancels the task, and the statement does not wait.
            self.update(job_id, status="cancelled", error_message="cancelled by user")
            if task is not None and not task.get("history"):
                self.node.dxf.cancel_task(f"ImportInto/{job_id}")
            return
        if task is None or task.get("history"):
            self.update(
                job_id, status="cancelled", end_time=time.time(), error_message="cancelled by user"
            )
            return
        self.node.dxf.cancel_task(f"ImportInto/{job_id}")
        # Like TiDB since v7.5 (PR #48928) CANCEL returns once the job row is terminal: the
        # scheduler moves the task to history first and writes the row just after, so the
        # task's state alone would return a moment too early.
        deadline = time.monotonic() + scaled(30.0, 3.0)
        while time.monotonic() < deadline:
            cur, _ = self.get(job_id)
            if cur is None or cur["status"] in TERMINAL:
                return
            time.sleep(scaled(0.2, 0.05))


class ImportTaskHandler:
    """DXF ``ImportInto``: step 1 import (one subtask per file), step 2 post-process (validate)."""

    def __init__(self, importer: Importer) -> None:
        self.importer = importer
        self.node = importer.node

    def plan(self, task: dict[str, Any], step: int, nodes: list[str]) -> list[dict[str, Any]]:
        meta = task["meta"]
        if step == 1:
            pinned = meta.get("node")
            out = []
            for i, f in enumerate(meta["files"]):
                target = pinned if pinned and pinned in nodes else nodes[i % len(nodes)]
                out.append(
                    {"exec_id": target, "physical_tid": meta["table_id"], "meta": {"file": f}}
                )
            return out
        return [{"exec_id": nodes[0], "physical_tid": meta["table_id"], "meta": {"validate": True}}]

    def next_step(self, step: int) -> int | None:
        return 2 if step == 1 else None

    def execute(
        self,
        subtask: dict[str, Any],
        task: dict[str, Any],
        save: Callable[[dict[str, Any]], None],
        stop: Callable[[], bool],
    ) -> dict[str, Any]:
        meta = task["meta"]
        table = self.node.schema.reload(force=True).table_by_id(meta["table_id"])
        if table is None:
            raise RuntimeError("target table was dropped")
        if subtask["step"] == 2:
            prefix = codec.row_prefix(table.id)
            have = len(self.node.kv.scan(prefix, codec.prefix_end(prefix)))
            want = self.node.dxf.rows_of(task)
            if have != want:
                raise RuntimeError(
                    f"checksum mismatched remote vs local => (checksum: 0 vs 0) (total_kvs: {have} "
                    f"vs {want})"
                )
            return {"row_count": 0}
        return self._import_file(table, subtask, meta, save, stop)

    def _import_file(
        self,
        table: Table,
        subtask: dict[str, Any],
        meta: dict[str, Any],
        save: Callable[[dict[str, Any]], None],
        stop: Callable[[], bool],
    ) -> dict[str, Any]:
        from .backfill import Stopped
        from .kv import TiKVTimeout

        ck = subtask.get("checkpoint") or {}
        done_lines = int(ck.get("line", 0))
        rows_done = int(ck.get("rows", 0))
        skip = int(meta.get("skip_rows") or 0)
        pace = scaled(0.2, 0.01)
        batch: list[tuple[int, list[Any]]] = []
        names = [c.name for c in table.columns]

        def flush(line_no: int) -> None:
            nonlocal rows_done
            writes: list[tuple[str, Any]] = []
            for h, vals in batch:
                writes.append((codec.row_key(table.id, h), vals))
                for idx in table.secondary():
                    if idx.state == "public":
                        pos = [table.col_pos(c) for c in idx.columns]
                        writes.append(
                            (codec.index_key(table.id, idx.id, [vals[p] for p in pos], h), 1)
                        )
            while True:
                if stop():
                    raise Stopped()
                try:
                    self.node.kv.batch_put(writes)
                    break
                except TiKVTimeout as exc:
                    log.warn("import write timed out, retrying", error=exc.detail[:200])
                    time.sleep(scaled(0.5, 0.1))
            rows_done += len(batch)
            batch.clear()
            try:
                save(
                    {
                        "checkpoint": {"line": line_no, "rows": rows_done},
                        "summary": {"row_count": rows_done},
                    }
                )
            except EtcdError as exc:  # the next batch saves a newer checkpoint
                log.warn("saving the import checkpoint failed", error=str(exc)[:200])
            time.sleep(pace)

        auto = 0
        with open(subtask["meta"]["file"], newline="", encoding="utf-8") as fh:
            for line_no, rec in enumerate(csv.reader(fh), start=1):
                if line_no <= skip or line_no <= done_lines or not rec:
                    continue
                if len(rec) != len(names):
                    raise RuntimeError(
                        f"[Lightning:Restore:ErrEncodeKV]encode kv error in file "
                        f"{os.path.basename(subtask['meta']['file'])}:{line_no}: column count mismatch"
                    )
                vals = [self._coerce(c.kind, v) for c, v in zip(table.columns, rec, strict=False)]
                if table.pk_handle:
                    handle = int(vals[table.col_pos(table.pk_handle)])
                else:
                    if auto == 0:
                        auto = self.node.meta.next_id(f"autoid/{table.id}", 100000)
                    handle = auto
                    auto += 1
                batch.append((handle, vals))
                if len(batch) >= 500:
                    flush(line_no)
            if batch:
                flush(line_no)
        return {"row_count": rows_done}

    @staticmethod
    def _coerce(kind: str, v: str) -> Any:
        if v == "\\N":
            return None
        if kind == "int":
            return int(v)
        if kind == "float":
            return float(v)
        return v

    def on_transition(self, task: dict[str, Any], event: str) -> None:
        job_id = task["meta"]["job_id"]
        imp = self.importer
        if event == "running":
            imp.update(job_id, status="running", step="importing", start_time=time.time())
        elif event == "step:2":
            imp.update(job_id, step="validating")
        elif event == "succeed":
            imp.update(
                job_id,
                status="finished",
                step="",
                end_time=time.time(),
                summary={"ImportedRows": self.node.dxf.rows_of(task)},
            )
        elif event == "reverted":
            err = task.get("error") or ""
            if "cancel" in err:
                imp.update(
                    job_id,
                    status="cancelled",
                    end_time=time.time(),
                    error_message="cancelled by user",
                )
            else:
                imp.update(job_id, status="failed", end_time=time.time(), error_message=err)
