"""tidb-server entry point: wires the MySQL listener, status API, owner election and workers.

``main(argv)`` is called by the image's ``main.py`` with the tidb-server flags.
"""

from __future__ import annotations

import platform
import socket
import threading
import time
import uuid
from typing import Any

from common.env import Pace, bug_enabled, bugs, pd_retry_budget, scaled
from common.etcd import Etcd, EtcdError
from common.flags import parse_or_exit
from common.gofmt import go_duration
from common.log import get_logger, setup
from common.signals import exit_on_signals
from common.versions import release_version, surface

from . import flags as tflags
from . import mdl, sysvars
from .catalog import Meta, SchemaCache
from .executor import Executor, Result, Session
from .kv import HTTPBackend, KVClient, MemoryBackend, StoreList
from .mysql_protocol import Connection, Listener
from .owner import OwnerManager
from .sql import SQLError

log = get_logger("tidb")

GIT_HASH = "5c0f1e7a3d9b2e4f6a8c0d1e2f3a4b5c6d7e8f90"
SYSTEM_DBS = frozenset({"information_schema", "mysql", "performance_schema", "metrics_schema"})


class Node:
    """Everything one tidb-server process holds; sessions reach it through the executor."""

    system_dbs = SYSTEM_DBS

    def __init__(self, opts: tflags.TiDBFlags) -> None:
        self.opts = opts
        self.release = release_version()
        self.surface = surface(self.release)
        self.version_string = f"8.0.11-TiDB-{self.release}-standin"
        self.ddl_id = str(uuid.uuid4())
        self.advertise = opts.advertise_address or _local_ip()
        self.start_ts = time.time()
        endpoints = [e.strip() for e in opts.path.split(",") if e.strip()]
        self.pd_endpoints = endpoints
        # Like TiDB's PD client, every meta call retries across the PD members for the PD
        # retry budget (a leader change is survived) before it fails.
        self.etcd = Etcd(endpoints, timeout=scaled(2.0, 0.5), deadline=pd_retry_budget())
        self.meta = Meta(self.etcd)
        if opts.store == "tikv":
            self.kv = KVClient(StoreList(endpoints), HTTPBackend())
        else:
            self.kv = KVClient(None, MemoryBackend())
        self.schema = SchemaCache(self.meta)
        self.loaded_version = 0
        # tables whose newer schema version this TiDB holds back for an open transaction
        self.mdl_wait: list[int] = []
        # The schema lease, scaled like every stand-in timer but never below the PD retry
        # budget: real TiDB's 45 s lease is far longer than a PD leader change, so a PD
        # election never expires a TiDB's schema. /info reports this value.
        lease = opts.lease_seconds if opts.lease_seconds > 0 else 45.0
        self.lease = max(scaled(lease), pd_retry_budget())
        self.owner = OwnerManager(
            self.etcd, endpoints, self.ddl_id, self.server_info, campaign=opts.run_ddl
        )
        self.listener: Listener | None = None
        # Striped row locks: commits touching the same rows on this TiDB apply one at a time.
        self.row_locks = [threading.Lock() for _ in range(64)]
        self._sysvar_cache: dict[str, tuple[float, Any]] = {}
        from .ddl import DDL
        from .dxf import DXF
        from .importer import Importer

        self.ddl = DDL(self)
        self.dxf = DXF(self)
        self.importer = Importer(self)

    # -- identity -----------------------------------------------------------------------
    @property
    def exec_id(self) -> str:
        return f"{self.advertise}:{self.opts.port}"

    def server_info(self) -> dict[str, Any]:
        return {
            "version": self.version_string,
            "git_hash": GIT_HASH,
            "ddl_id": self.ddl_id,
            "ip": self.advertise,
            "listening_port": self.opts.port,
            "status_port": self.opts.status_port,
            "lease": go_duration(self.lease),
            "binlog_status": "Off",
            "start_timestamp": int(self.start_ts),
            "labels": {},
            "server_id": 0,
            "schema_version": self.loaded_version,
            mdl.INFO_FIELD: list(self.mdl_wait),
        }

    def is_owner(self) -> bool:
        return self.owner.is_owner()

    def tidb_version_text(self) -> str:
        return (
            f"Release Version: {self.release}\nEdition: Community\nGit Commit Hash: {GIT_HASH}\n"
            f"Git Branch: HEAD\nUTC Build Time: 2026-01-01 00:00:00\nGoVersion: go1.23.0\n"
            f"Race Enabled: false\nCheck Table Before Drop: false\nStore: {self.opts.store}"
        )

    # -- sysvars ------------------------------------------------------------------------
    def default_sysvar(self, name: str) -> Any:
        if name == "tidb_enable_dist_task":
            return "ON" if self.surface.dist_task_default_on else "OFF"
        return sysvars.DEFAULTS[name][0]

    def global_sysvar(self, name: str) -> Any:
        cached = self._sysvar_cache.get(name)
        if cached and time.monotonic() - cached[0] < scaled(1.0, 0.1):
            return cached[1]
        value, _ = self.meta.get(f"sysvars/{name}")
        if value is None:
            value = self.default_sysvar(name)
        self._sysvar_cache[name] = (time.monotonic(), value)
        return value

    def sysvar_value(self, name: str, scope: str, session: Session) -> Any:
        if name == "version":
            return self.version_string
        if name == "hostname":
            return socket.gethostname()
        if name == "port":
            return self.opts.port
        if name == "autocommit" and scope != "global":
            return 1 if session.autocommit else 0
        if name not in sysvars.DEFAULTS:
            raise SQLError(1193, f"Unknown system variable '{name}'")
        if scope != "global" and name in session.vars:
            return session.vars[name]
        return self.global_sysvar(name)

    def set_sysvar(self, name: str, value: Any, scope: str, session: Session) -> None:
        value = sysvars.normalize(name, value)
        if scope == "global":
            self.meta.put(f"sysvars/{name}", value)
            self._sysvar_cache.pop(name, None)
        else:
            session.vars[name] = value

    def sysvar_on(self, name: str) -> bool:
        return sysvars.is_on(self.global_sysvar(name))

    # -- system tables ------------------------------------------------------------------
    def system_table(
        self, db: str, name: str, session: Session
    ) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        from . import systables

        return systables.render(self, db, name, session)

    # -- lifecycle ----------------------------------------------------------------------
    def wait_bootstrap(self) -> None:
        """Block until PD's etcd answers (TiDB does not open 4000 before bootstrap)."""
        while True:
            try:
                self.schema.reload(force=True)
                self.loaded_version = self.schema.current.version
                return
            except EtcdError as exc:
                log.warn("waiting for PD", error=str(exc)[:200])
                time.sleep(scaled(1.0, 0.2))

    def adopt_schema(self, force: bool = False) -> int:
        """Load the newest schema; report it only once no write of an older one is in flight
        and no open transaction of ours holds a table it changed (`mdl`).

        The owner moves a job to its next schema state when every TiDB reported the last
        one, so a write computed under (say) ``delete only`` can never land after the
        backfill has read past its row.
        """
        s = self.schema.reload(force=force)
        if s.version != self.loaded_version:
            held = self.mdl_blocking(s)
            if held:
                if held != self.mdl_wait:
                    self.mdl_wait = held
                    log.info("schema version waits for metadata locks",
                             schema_version=s.version, table_ids=held)
                    self.owner.publish()
                return self.loaded_version
            self.mdl_wait = []
            if not self.schema.drain(s.version, self.lease):
                log.warn("writes of an older schema still in flight after a lease",
                         schema_version=s.version)
            self.loaded_version = s.version
            self.owner.publish()
        return s.version

    def mdl_txns(self) -> list[dict[str, Any]]:
        """This TiDB's open transactions that hold metadata locks (``/standin/mdl``)."""
        if self.listener is None:
            return []
        return [mdl.txn_record(s.conn_id, s.txn_start, dict(s.mdl_held), list(s.txn_sql))
                for s in self.listener.sessions() if s.mdl_held]

    def mdl_blocking(self, schema: Any) -> list[int]:
        """Tables ``schema`` changed under an open transaction of ours (see `mdl`)."""
        if self.listener is None or not self.sysvar_on("tidb_enable_metadata_lock"):
            return []
        return mdl.blocking((dict(s.mdl_held) for s in self.listener.sessions()), schema)

    def schema_expired(self) -> bool:
        """No schema check succeeded for a lease: TiDB's schema validator refuses commits."""
        return time.monotonic() - self.schema.checked_at > self.lease

    def schema_loop(self) -> None:
        """Reload the schema when the global version moves (TiDB's schema lease loop):
        quickly while versions are moving (a DDL job is on), slowly when they are not."""
        pace = Pace(scaled(0.3, 0.05), scaled(1.0, 0.25))
        changed_at = 0.0
        while True:
            pace.wait(time.monotonic() - changed_at < scaled(10.0, 3.0))
            try:
                before = self.loaded_version
                if self.adopt_schema() != before:
                    changed_at = time.monotonic()
            except EtcdError as exc:
                log.warn("failed to reload schema", error=str(exc)[:200])


class Handler:
    """Per-connection glue between the protocol and the executor."""

    def __init__(self, node: Node, conn: Connection) -> None:
        self.node = node
        self.session = Session(conn_id=conn.conn_id)
        self.executor = Executor(node, self.session)

    def init_db(self, db: str) -> None:
        self.executor.do_use(db)

    def query(self, text: str) -> Result:
        self.session.vars["\0query"] = text
        return self.executor.execute(text)

    def close(self) -> None:
        self.session.buffer.clear()


def _local_ip() -> str:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("10.255.255.255", 1))
        ip = s.getsockname()[0]
        s.close()
        return str(ip)
    except OSError:
        return "127.0.0.1"


def main(argv: list[str]) -> int:
    opts = tflags.from_config(parse_or_exit(tflags.parse_tidb, argv))
    setup(opts.log_level, opts.log_file or None)
    node = Node(opts)
    log.info(
        "Welcome to TiDB.",
        release_version=node.release,
        git_hash=GIT_HASH,
        store=opts.store,
        path=opts.path,
        bugs=",".join(sorted(bugs())),
        python=platform.python_version(),
        standin="test-double",
    )
    if bug_enabled(48303) or bug_enabled(48546) or bug_enabled(46735):
        log.info("stand-in bug modes enabled", bugs=",".join(sorted(bugs())))
    node.wait_bootstrap()
    node.owner.start()
    threading.Thread(target=node.schema_loop, name="schema-lease", daemon=True).start()
    node.ddl.start()
    node.dxf.start()
    node.importer.start()
    from .status import serve_status

    if opts.report_status:
        serve_status(node)
    done = exit_on_signals(lambda name: log.info("got signal to exit", signal=name))
    node.listener = Listener(opts.host, opts.port, node.version_string, lambda c: Handler(node, c))
    log.info("server is running MySQL protocol", addr=f"{opts.host}:{opts.port}")
    threading.Thread(target=node.listener.serve_forever, name="mysql-listener", daemon=True).start()
    done.wait()
    shutdown(node, node.listener)
    return 0


def shutdown(node: Node, listener: Listener) -> None:
    """SIGTERM/SIGINT: close like tidb-server (cmd/tidb-server/main.go, signal handler).

    ``Server.Close`` stops accepting; ``DrainClients`` waits for connections inside a
    transaction (they close themselves when it ends) up to ``gracefulCloseConnectionsTimeout``
    (15 s; scaled here like every stand-in timer) and then kills the rest; closing the domain
    revokes the etcd session, so ownership passes at once.
    """
    listener.close()
    log.info("start drain clients")
    deadline = time.monotonic() + scaled(15.0, 1.0)
    while listener.in_txn() and time.monotonic() < deadline:
        time.sleep(0.02)
    listener.kill_all()
    node.owner.close()
    log.info("tidb-server exited", ddl_id=node.ddl_id)
