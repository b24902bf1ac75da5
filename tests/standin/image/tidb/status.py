"""TiDB's status HTTP API on ``--status`` (reference §6): /status, /info, /info/all,
POST /ddl/owner/resign, /debug/pprof/goroutine?debug=2 (a real dump of this process's threads).
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from common.etcd import EtcdError
from common.gofmt import go_duration

from . import mdl, triggers
from .locks import goroutine_dump

if TYPE_CHECKING:
    from .server import Node


#: Fields of our server record that TiDB's infosync.ServerInfo does not have (v7.5.0,
#: checked by tests/realbin): kept in etcd for the stand-in's own schema sync only.
PRIVATE_INFO = ("schema_version", mdl.INFO_FIELD)


def public_info(info: dict[str, Any]) -> dict[str, Any]:
    """A server record as TiDB's /info and /info/all show it."""
    return {k: v for k, v in info.items() if k not in PRIVATE_INFO}


def _make_handler(node: Node) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: Any, ctype: str = "application/json") -> None:
            data = (
                body
                if isinstance(body, bytes)
                else (
                    body.encode() if isinstance(body, str) else json.dumps(body, indent=1).encode()
                )
            )
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # stdlib name
            path = self.path.split("?", 1)[0].rstrip("/")
            try:
                if path == "/status":
                    conns = node.listener.connections if node.listener else 0
                    self._send(
                        200,
                        {
                            "connections": conns,
                            "version": node.version_string,
                            "git_hash": node.server_info()["git_hash"],
                            "status": {"init_stats_percentage": 100},
                        },
                    )
                elif path == "/info":
                    # tikvhandler.ServerInfo: is_owner, max_procs, gogc + infosync.ServerInfo
                    info = {"is_owner": node.is_owner(), "max_procs": os.cpu_count() or 1,
                            "gogc": 100, **public_info(node.server_info())}
                    self._send(200, info)
                elif path == "/info/all":
                    servers = {k: public_info(v) for k, v in node.owner.servers().items()}
                    self._send(
                        200,
                        {
                            "servers_num": len(servers),
                            "owner_id": node.owner.owner_id(),
                            "is_all_server_version_consistent": True,
                            "all_servers_info": servers,
                        },
                    )
                elif path == "/config":
                    opts = node.opts
                    self._send(200, {  # TiDB's config JSON names; the lease as scaled
                        "host": opts.host, "advertise-address": node.advertise,
                        "port": opts.port, "store": opts.store, "path": opts.path,
                        "lease": go_duration(node.lease), "run-ddl": opts.run_ddl,
                        "status": {"report-status": opts.report_status,
                                   "status-host": opts.status_host,
                                   "status-port": opts.status_port},
                    })
                elif path == "/standin/mdl":
                    self._send(200, node.mdl_txns())
                elif path == "/standin/triggers":
                    self._send(200, triggers.counts())
                elif path == "/debug/pprof/goroutine":
                    self._send(200, goroutine_dump(), "text/plain; charset=utf-8")
                elif path == "/metrics":
                    self._send(
                        200,
                        f"tidb_server_connections {node.listener.connections if node.listener else 0}\n",
                        "text/plain; version=0.0.4",
                    )
                else:
                    self._send(404, "404 page not found\n", "text/plain; charset=utf-8")
            except EtcdError as exc:
                self._send(500, f"{exc}\n", "text/plain; charset=utf-8")

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if path == "/ddl/owner/resign":
                if node.owner.resign():
                    self._send(200, "success!", "text/plain; charset=utf-8")
                else:
                    self._send(
                        400,
                        "This node is not a ddl owner, can't be resigned.",
                        "text/plain; charset=utf-8",
                    )
            else:
                self._send(404, "404 page not found\n", "text/plain; charset=utf-8")

    return Handler


def serve_status(node: Node) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(
        (node.opts.status_host, node.opts.status_port), _make_handler(node)
    )
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="status-server", daemon=True).start()
    return server
