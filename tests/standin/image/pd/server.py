"""PD role: real etcd for raft membership + PD's HTTP API on the client port.

Start-up: parse flags like pd-server, start etcd (pd/etcdproc.py), serve HTTP on the
`--client-urls` port at once (503 until the local etcd answers), publish this member's
client URLs once there is a quorum, and keep going until SIGTERM/SIGINT.
"""

from __future__ import annotations

import os
import threading
import time

from common.env import bugs, scaled, time_scale
from common.etcd import Etcd, EtcdError
from common.flags import parse_or_exit
from common.httpserver import serve, split_host_port
from common.log import get_logger, setup
from common.signals import exit_on_signals

from pd.api import build_router
from pd.etcdproc import ETCD_CLIENT_URL, EtcdProcess, EtcdSettings, raft_timings
from pd.flags import PdConfig, parse_pd
from pd.join import JoinError, join_cluster
from pd.members import Membership
from pd.stores import StoreBook, StoreRegistry, StoreThresholds

log = get_logger("pd")


class PDServer:
    """Shared state of one PD role process (handlers read it; one watcher thread updates it)."""

    def __init__(self, cfg: PdConfig, *, initial_cluster: str | None = None,
                 initial_cluster_state: str = "new") -> None:
        self.cfg = cfg
        self.started_at = time.time()
        # Local etcd calls: short, so an etcd without quorum yields 503 instead of a hang.
        self.op_timeout = min(max(scaled(3.0, 1.0), 1.0), 3.0)
        self.proxy_timeout = 5.0
        self.probe_timeout = 1.0
        self.local_etcd = Etcd([ETCD_CLIENT_URL], timeout=self.op_timeout, deadline=self.op_timeout)
        self.membership = Membership(
            self.local_etcd, cfg.name, list(cfg.advertise_client_urls), cfg.initial_cluster, self.op_timeout
        )
        self.thresholds = StoreThresholds.from_config(cfg.max_store_down_time)
        self.stores = StoreBook(StoreRegistry(self.local_etcd, self.op_timeout), self.thresholds)
        # Real PD persists store meta about once a minute; scaled, at least every second.
        self.persist_interval = scaled(60.0, 1.0)
        self._leader_lock = threading.Lock()
        self._is_leader = False
        self._leader_urls: list[str] = []
        heartbeat_ms, election_ms = raft_timings(cfg.tick_interval, cfg.election_interval)
        self.etcd = EtcdProcess(
            EtcdSettings(
                name=cfg.name,
                data_dir=os.path.join(cfg.data_dir, "etcd"),
                listen_peer_urls=cfg.peer_urls,
                advertise_peer_urls=cfg.advertise_peer_urls,
                initial_cluster=initial_cluster or cfg.initial_cluster,
                heartbeat_ms=heartbeat_ms,
                election_ms=election_ms,
                force_new_cluster=cfg.force_new_cluster,
                initial_cluster_state=initial_cluster_state,
            )
        )
        self._ready = threading.Event()
        self._stop = threading.Event()

    def ready(self) -> bool:
        return self._ready.is_set()

    def leadership(self) -> tuple[bool, list[str]]:
        """(this PD is the leader, the leader's client URLs) as of the last watch tick."""
        with self._leader_lock:
            return self._is_leader, list(self._leader_urls)

    def live_leadership(self) -> tuple[bool, list[str]]:
        """Like `leadership()` but asked of the local etcd now (a few local calls).

        Request handlers use this so a deposed leader stops answering for the stores at
        once, not up to a watch tick later.
        """
        try:
            view = self.membership.view()
        except EtcdError:
            return False, []
        leader = view.leader
        if leader is None:
            return False, []
        return leader["member_id"] == view.self_id, list(leader["client_urls"])

    def _track_leader(self) -> None:
        try:
            view = self.membership.view()
        except EtcdError:
            is_leader, urls = False, []
        else:
            leader = view.leader
            is_leader = leader is not None and leader["member_id"] == view.self_id
            urls = list(leader["client_urls"]) if leader else []
        with self._leader_lock:
            changed = is_leader != self._is_leader
            self._is_leader, self._leader_urls = is_leader, urls
        if changed:
            log.info("PD leadership changed", is_leader=is_leader, name=self.cfg.name)
        if not is_leader:
            self.stores.drop()
        elif not self.stores.loaded:
            try:
                self.stores.load()
                log.info("loaded store records as the new leader")
            except EtcdError as exc:
                log.warn("cannot load store records yet", error=str(exc))

    def persist_loop(self) -> None:
        """Leader only: write changed store records to etcd every `persist_interval`."""
        while not self._stop.wait(self.persist_interval):
            if not self.leadership()[0]:
                continue
            try:
                self.stores.persist()
            except EtcdError as exc:
                log.warn("persist store records failed", error=str(exc))
            except Exception:
                log.exception("persist store records failed")

    def watch(self) -> None:
        """Track local etcd readiness and leadership; publish member info once quorate.

        A failed tick is logged and the next one tries again: this thread must outlive
        any surprise, or the PD would keep serving a stale leadership forever.
        """
        state = {"ready": False}
        while not self._stop.is_set():
            try:
                self._tick(state)
            except Exception:
                log.exception("pd watch tick failed")
            self._stop.wait(0.3)

    def _tick(self, state: dict[str, bool]) -> None:
        try:
            self.local_etcd.status(timeout=1.0)
            ok = self.etcd.running()
        except EtcdError:
            ok = False
        if ok:
            self._ready.set()
        else:
            self._ready.clear()
        if ok != state["ready"]:
            log.info("pd serving state changed", ready=ok)
            state["ready"] = ok
        if ok:
            try:
                self.membership.publish()
            except EtcdError as exc:
                log.debug("publish member info failed", error=str(exc))
        self._track_leader()

    def stop(self) -> None:
        self._stop.set()
        self.etcd.stop()


def main(argv: list[str]) -> int:
    cfg: PdConfig = parse_or_exit(
        lambda a: parse_pd(a, os.environ.get("HOSTNAME")), argv
    )
    setup(cfg.log_level, cfg.log_file or None)
    log.info("Welcome to Placement Driver (PD) stand-in (test double)", name=cfg.name,
             time_scale=time_scale(), bugs=",".join(sorted(bugs())))
    for warning in cfg.warnings:
        log.warn(warning)
    initial, state = None, "new"
    has_data = os.path.isdir(os.path.join(cfg.data_dir, "etcd", "member"))
    if cfg.join and not has_data:
        try:
            initial = join_cluster(cfg.name, [u for u in cfg.join.split(",") if u.strip()],
                                   list(cfg.advertise_peer_urls))
        except JoinError as exc:
            log.fatal("join meet error", error=str(exc))
            return 1
        state = "existing"
    pd = PDServer(cfg, initial_cluster=initial, initial_cluster_state=state)
    log.info("PD config", client_urls=",".join(cfg.client_urls), peer_urls=",".join(cfg.peer_urls),
             initial_cluster=initial or cfg.initial_cluster, join=cfg.join, data_dir=cfg.data_dir,
             store_disconnected_after=pd.thresholds.disconnected_after,
             store_down_after=pd.thresholds.down_after)
    done = exit_on_signals(lambda name: log.info("got signal to exit", signal=name))
    pd.etcd.start()
    servers = []
    for url in cfg.client_urls:
        host, port = split_host_port(url, 2379)
        try:
            servers.append(serve(host, port, build_router(pd), name="pd-api"))
        except OSError as exc:
            log.fatal("run server failed", error=str(exc), url=url)
            pd.stop()
            return 1
    threading.Thread(target=pd.watch, name="pd-watch", daemon=True).start()
    threading.Thread(target=pd.persist_loop, name="pd-persist", daemon=True).start()
    done.wait()
    for server in servers:
        server.shutdown()
    pd.stop()
    log.info("PD stand-in exited")
    return 0
