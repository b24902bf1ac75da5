"""TiKV role: KV RPC on `--addr` (sqlite-backed), status server, heartbeats to PD.

Nothing here simulates faults: a paused or partitioned TiKV simply does not answer and
the client (TiDB role) times out; a killed one loses only unacknowledged writes; PD marks
it Disconnected/Down because its heartbeats stop arriving.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from typing import Any

from common import httpclient
from common.env import bugs, scaled, store_heartbeat_interval, time_scale
from common.flags import parse_or_exit
from common.httpserver import (
    Request,
    Response,
    Router,
    empty_response,
    json_response,
    serve,
    split_host_port,
    text_response,
)
from common.log import get_logger, setup
from common.signals import exit_on_signals
from common.versions import release_version

from tikv.flags import TikvConfig, parse_tikv
from tikv.store import KVStore

log = get_logger("tikv")
HEARTBEAT_PATH = "/pd/api/v1/standin/store-heartbeat"


class TiKVServer:
    def __init__(self, cfg: TikvConfig) -> None:
        self.cfg = cfg
        self.started_at = time.time()
        self.store = KVStore(cfg.data_dir)
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.store_id = 0
        self.heartbeats_ok = 0
        self.heartbeats_failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- KV RPC ----------------------------------------------------------------------------
    def kv_router(self) -> Router:
        router = Router()
        router.add("POST", "/kv/batch_put", self._rpc("batch_put", lambda b: {"count": self.store.batch_put(_list(b, "kvs"))}))
        router.add("POST", "/kv/batch_get", self._rpc("batch_get", lambda b: {"kvs": self.store.batch_get(
            _list(b, "keys"), _snapshot(b))}))
        router.add("POST", "/kv/scan", self._rpc("scan", lambda b: {"kvs": self.store.scan(
            str(b.get("start") or ""), b.get("end") or None, int(b.get("limit") or 0), bool(b.get("reverse")),
            _snapshot(b))}))
        router.add("POST", "/kv/batch_delete", self._rpc("batch_delete", lambda b: {"deleted": self.store.batch_delete(_list(b, "keys"))}))
        router.add("POST", "/kv/delete_range", self._rpc("delete_range", lambda b: {"deleted": self.store.delete_range(
            str(b.get("start") or ""), b.get("end") or None)}))
        router.add("GET", "/status", lambda _r: empty_response(200))
        return router

    def _rpc(self, name: str, op: Any) -> Any:
        def handler(req: Request) -> Response:
            with self._lock:
                self.requests[name] += 1
            try:
                body = req.json() or {}
                if not isinstance(body, dict):
                    raise ValueError("request body must be a JSON object")
                return json_response(op(body))
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                with self._lock:
                    self.errors[name] += 1
                return json_response({"error": f"invalid request: {exc}"}, 400)
            except Exception as exc:  # sqlite I/O errors etc.
                with self._lock:
                    self.errors[name] += 1
                log.exception("kv request failed", rpc=name)
                return json_response({"error": str(exc)}, 500)

        return handler

    # -- status ----------------------------------------------------------------------------
    def status_router(self) -> Router:
        router = Router()
        router.add("GET", "/status", lambda _r: empty_response(200))
        router.add("GET", "/metrics", self._metrics)
        router.add("GET", "/config", self._config)
        return router

    def _config(self, _req: Request) -> Response:
        """TiKV's ``/config`` (tikv/tikv TikvConfig JSON names) with the stand-in's timers.

        The stand-in has no raft: what stands for a raft election is how long its TiDB
        waits on a store before giving up on it, reported as ten base ticks.
        """
        cfg = self.cfg
        return json_response({
            "log-level": cfg.log_level,
            "server": {"addr": cfg.addr, "advertise-addr": cfg.advertise_addr,
                       "status-addr": cfg.status_addr,
                       "advertise-status-addr": cfg.advertise_status_addr,
                       "labels": dict(cfg.labels)},
            "storage": {"data-dir": cfg.data_dir},
            "pd": {"endpoints": list(cfg.pd_endpoints)},
            "raftstore": {
                "raft-base-tick-interval": readable_duration(scaled(1.0, 0.1)),
                "raft-heartbeat-ticks": 2,
                "raft-election-timeout-ticks": 10,
                "pd-store-heartbeat-tick-interval": readable_duration(store_heartbeat_interval()),
            },
        })

    def _metrics(self, _req: Request) -> Response:
        keys, size = self.store.count_keys(), self.store.size()
        capacity, available = self._capacity()
        lines = [
            "# HELP tikv_store_size_bytes Size of storage.",
            "# TYPE tikv_store_size_bytes gauge",
            f'tikv_store_size_bytes{{type="capacity"}} {capacity}',
            f'tikv_store_size_bytes{{type="available"}} {available}',
            f'tikv_store_size_bytes{{type="used"}} {size}',
            "# HELP tikv_engine_num_keys Number of keys (stand-in: rows in the KV table).",
            "# TYPE tikv_engine_num_keys gauge",
            f'tikv_engine_num_keys{{db="kv",cf="default"}} {keys}',
            "# HELP tikv_grpc_msg_total Total number of handled requests.",
            "# TYPE tikv_grpc_msg_total counter",
        ]
        with self._lock:
            requests, errors = dict(self.requests), dict(self.errors)
            ok, failed = self.heartbeats_ok, self.heartbeats_failed
        lines += [f'tikv_grpc_msg_total{{type="{k}"}} {v}' for k, v in sorted(requests.items())]
        lines += ["# HELP tikv_grpc_msg_fail_total Total number of failed requests.",
                  "# TYPE tikv_grpc_msg_fail_total counter"]
        lines += [f'tikv_grpc_msg_fail_total{{type="{k}"}} {v}' for k, v in sorted(errors.items())]
        lines += [
            "# HELP tikv_pd_heartbeat_message_total Store heartbeats sent to PD.",
            "# TYPE tikv_pd_heartbeat_message_total counter",
            f'tikv_pd_heartbeat_message_total{{type="ok"}} {ok}',
            f'tikv_pd_heartbeat_message_total{{type="fail"}} {failed}',
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {int(self.started_at)}",
        ]
        return text_response("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4; charset=utf-8")

    def _capacity(self) -> tuple[int, int]:
        try:
            disk = shutil.disk_usage(self.cfg.data_dir)
            capacity, available = disk.total, disk.free
        except OSError:
            capacity, available = 0, 0
        if self.cfg.capacity:
            capacity = self.cfg.capacity
            available = min(available, capacity)
        return capacity, available

    # -- heartbeats ------------------------------------------------------------------------
    def heartbeat_loop(self) -> None:
        """Heartbeat PD every interval; a surprise is logged and the loop goes on."""
        while not self._stop.is_set():
            try:
                self._heartbeats()
            except Exception:
                log.exception("store heartbeat loop failed, restarting it")
                self._stop.wait(store_heartbeat_interval())

    def _heartbeats(self) -> None:
        """Heartbeat PD every interval; fail over across `--pd-endpoints` like TiKV's PD client."""
        endpoints = [httpclient.normalize_url(e) for e in self.cfg.pd_endpoints]
        interval = store_heartbeat_interval()
        timeout = max(1.0, 2 * interval)
        preferred = 0
        last_warning = 0.0
        while not self._stop.is_set():
            began = time.monotonic()
            used = self.store.size()
            capacity, available = self._capacity()
            beat = {
                "address": self.cfg.advertise_addr,
                "status_address": self.cfg.advertise_status_addr,
                "version": release_version().lstrip("v"),
                "git_hash": "standin",
                "start_timestamp": int(self.started_at),
                "deploy_path": "/",
                "capacity": capacity,
                "available": available,
                "used_size": used,
                "labels": dict(self.cfg.labels),
            }
            sent = False
            errors = []
            for attempt in range(len(endpoints)):
                index = (preferred + attempt) % len(endpoints)
                url = endpoints[index] + HEARTBEAT_PATH
                try:
                    status, body = httpclient.post_json(url, beat, timeout=timeout)
                except httpclient.Unreachable as exc:
                    errors.append(str(exc))
                    continue
                if status == 200 and isinstance(body, dict):
                    if body.get("store_id") and body["store_id"] != self.store_id:
                        self.store_id = int(body["store_id"])
                        log.info("store registered in PD", store_id=self.store_id, pd=endpoints[index])
                    preferred = index
                    sent = True
                    break
                errors.append(f"{url}: HTTP {status} {body}")
            with self._lock:
                if sent:
                    self.heartbeats_ok += 1
                else:
                    self.heartbeats_failed += 1
            if not sent and time.monotonic() - last_warning > 5:
                log.warn("PD failed to respond", endpoints=",".join(endpoints), error="; ".join(errors)[-500:])
                last_warning = time.monotonic()
            self._stop.wait(max(0.0, interval - (time.monotonic() - began)))

    def gc_loop(self) -> None:
        """Collect versions older than the GC life time (TiDB's default 10 m, scaled)."""
        life = scaled(600.0, 30.0)
        while not self._stop.wait(life / 10):
            try:
                dropped = self.store.gc(time.time_ns() - int(life * 1e9))
            except Exception:
                log.exception("mvcc gc failed")
                continue
            if dropped:
                log.debug("mvcc gc", dropped=dropped)

    def stop(self) -> None:
        self._stop.set()


def readable_duration(seconds: float) -> str:
    """TiKV's ReadableDuration: ``1s``, ``500ms``, ``1m30s`` (no zero parts)."""
    millis = round(seconds * 1000)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        amount, millis = divmod(millis, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def _snapshot(body: dict[str, Any]) -> int | None:
    value = body.get("snapshot")
    return None if value is None else int(value)


def _list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list):
        raise ValueError(f"{name!r} must be a list")
    return value


def main(argv: list[str]) -> int:
    cfg: TikvConfig = parse_or_exit(parse_tikv, argv)
    setup(cfg.log_level, cfg.log_file or None)
    log.info("Welcome to TiKV stand-in (test double)", release_version=release_version(),
             time_scale=time_scale(), bugs=",".join(sorted(bugs())))
    for warning in cfg.warnings:
        log.warn(warning)
    log.info("TiKV config", addr=cfg.addr, advertise_addr=cfg.advertise_addr, status_addr=cfg.status_addr,
             advertise_status_addr=cfg.advertise_status_addr, data_dir=cfg.data_dir,
             pd_endpoints=",".join(cfg.pd_endpoints), heartbeat_interval=store_heartbeat_interval())
    try:
        tikv = TiKVServer(cfg)
    except Exception as exc:  # noqa: BLE001 - any reason the store cannot open is fatal, as in TiKV
        log.fatal("failed to open the store", data_dir=cfg.data_dir, error=str(exc))
        return 1
    done = exit_on_signals(lambda name: log.info("receive signal, exiting", signal=name))
    servers = []
    try:
        host, port = split_host_port(cfg.addr, 20160)
        servers.append(serve(host, port, tikv.kv_router(), name="tikv-kv"))
        if cfg.status_addr:
            host, port = split_host_port(cfg.status_addr, 20180)
            servers.append(serve(host, port, tikv.status_router(), name="tikv-status"))
    except OSError as exc:
        log.fatal("failed to start server", error=str(exc))
        return 1
    threading.Thread(target=tikv.heartbeat_loop, name="pd-heartbeat", daemon=True).start()
    threading.Thread(target=tikv.gc_loop, name="gc-worker", daemon=True).start()
    log.info("TiKV is ready to serve", pid=os.getpid())
    done.wait()
    tikv.stop()
    for server in servers:
        server.shutdown()
    tikv.store.close()
    return 0
