"""PD's HTTP API on the client port (tikv/pd server/api shapes) plus the `/v3` gateway proxy.

Answers never hang: every etcd call is bounded, a PD without quorum answers 503/500 in
about `op_timeout`, and the `/v3/*` proxy returns 503 with an etcd-style error body when
the local etcd cannot answer in time (the etcd client in common/etcd.py then fails over to
another PD, as TiDB's etcd client would).
"""

from __future__ import annotations

import concurrent.futures
import math
import time
from typing import TYPE_CHECKING, Any

from common import httpclient
from common.etcd import EtcdError, EtcdUnavailable
from common.gofmt import go_duration, go_time
from common.httpserver import Request, Response, Router, empty_response, json_response
from common.log import get_logger
from common.versions import release_version

from pd.etcdproc import ETCD_CLIENT_URL, raft_timings
from pd.stores import NotLoaded, stores_response

if TYPE_CHECKING:
    from pd.server import PDServer

log = get_logger("pd.api")
API = "/pd/api/v1"
#: What GET /leader shows of the leader (pdpb.Member as the election key holds it).
LEADER_FIELDS = ("name", "member_id", "peer_urls", "client_urls")


def build_router(pd: PDServer) -> Router:
    router = Router()
    api = _Api(pd)
    router.add("GET", f"{API}/ping|/ping", api.ping)
    router.add("GET", f"{API}/health|/health", api.health)
    router.add("GET", f"{API}/members", api.members)
    router.add("DELETE", f"{API}/members/name/(?P<name>[^/]+)", api.delete_member)
    router.add("GET", f"{API}/leader", api.leader)
    router.add("POST", f"{API}/leader/resign", api.resign)
    router.add("POST", f"{API}/leader/transfer/(?P<name>[^/]+)", api.transfer)
    router.add("GET", f"{API}/stores", api.stores)
    router.add("GET", f"{API}/store/(?P<id>\\d+)", api.store)
    router.add("GET", f"{API}/status", api.status)
    router.add("GET", f"{API}/version", api.version)
    router.add("GET", f"{API}/config", api.config)
    router.add("GET", f"{API}/cluster", api.cluster)
    router.add("GET", f"{API}/cluster/status", api.cluster_status)
    router.add("POST", f"{API}/standin/store-heartbeat", api.store_heartbeat)
    router.add(("POST", "GET", "PUT"), "/v3/.*", api.proxy_v3)
    return router


def _error(status: int, message: str) -> Response:
    # PD renders errors as a JSON string (`h.rd.JSON(w, status, err.Error())`).
    return json_response(message, status)


class _Api:
    def __init__(self, pd: PDServer) -> None:
        self.pd = pd
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="pd-health")

    # -- liveness ----------------------------------------------------------------------
    def ping(self, req: Request) -> Response:
        if not self.pd.ready():
            return _error(503, "server not started")
        return empty_response(200)

    def health(self, req: Request) -> Response:
        if not self.pd.ready():
            return _error(503, "server not started")
        try:
            view = self.pd.membership.view()
        except EtcdError as exc:
            return _error(503, str(exc))

        def probe(member: dict[str, Any]) -> bool:
            if member["name"] == self.pd.cfg.name:
                return self.pd.ready()
            for url in member["client_urls"]:
                try:
                    result = httpclient.request("GET", f"{url}{API}/ping", timeout=self.pd.probe_timeout)
                except httpclient.Unreachable:
                    continue
                if result.ok:
                    return True
            return False

        results = list(self._pool.map(probe, view.members))
        body = [
            {"name": m["name"], "member_id": m["member_id"], "client_urls": m["client_urls"], "health": ok}
            for m, ok in zip(view.members, results, strict=True)
        ]
        return json_response(body)

    # -- membership ----------------------------------------------------------------------
    def members(self, req: Request) -> Response:
        try:
            view = self.pd.membership.view()
        except EtcdError as exc:
            return _error(500, str(exc))
        body: dict[str, Any] = {"header": {"cluster_id": view.cluster_id}, "members": view.members}
        if view.leader:
            body["leader"] = view.leader
            body["etcd_leader"] = view.leader
        return json_response(body)

    def delete_member(self, req: Request) -> Response:
        """Remove a member by name (etcd member remove; needs quorum)."""
        name = req.params["name"]
        try:
            view = self.pd.membership.view()
            member = view.by_name(name)
            if member is None:
                return _error(404, f"not found, pd: {name}")
            self.pd.local_etcd.remove_member(member["member_id"], timeout=self.pd.op_timeout * 2)
        except EtcdUnavailable as exc:
            return _error(503, str(exc))
        except EtcdError as exc:
            return _error(500, str(exc))
        log.info("removed PD member", name=name)
        return json_response(f"removed, pd: {name}")

    def leader(self, req: Request) -> Response:
        try:
            view = self.pd.membership.view()
        except EtcdError as exc:
            return _error(500, str(exc))
        if not view.leader:
            return _error(500, "no leader")
        # PD answers with the member record of the election key (InitMemberInfo): name,
        # member_id, peer_urls, client_urls -- no deploy_path/binary_version/git_hash,
        # which only /members adds (v7.5.0 and v8.1, checked by tests/realbin).
        return json_response({k: view.leader[k] for k in LEADER_FIELDS if k in view.leader})

    def resign(self, req: Request) -> Response:
        return self._move_leader(None, req)

    def transfer(self, req: Request) -> Response:
        return self._move_leader(req.params["name"], req)

    def _move_leader(self, target: str | None, req: Request) -> Response:
        try:
            view = self.pd.membership.view()
        except EtcdError as exc:
            return _error(500, str(exc))
        leader = view.leader
        if leader is None:
            return _error(500, "no leader")
        if leader["member_id"] != view.self_id:
            # Real PD redirects API calls to the leader; so do we (one hop only).
            if req.headers.get("pd-redirector"):
                return _error(500, "redirect loop: not leader")
            for url in leader["client_urls"]:
                try:
                    result = httpclient.request(
                        "POST", f"{url}{req.path}", timeout=self.pd.op_timeout * 2,
                        headers={"PD-Redirector": self.pd.cfg.name},
                    )
                except httpclient.Unreachable:
                    continue
                return Response(status=result.status, raw=result.body)
            return _error(500, "leader unreachable")
        if target is None:
            candidates = [m for m in view.members if m["member_id"] != view.self_id]
        else:
            candidates = [m for m in view.members if m["name"] == target]
        if not candidates:
            return _error(500, "no valid pd to transfer leader")
        last = ""
        for member in candidates:
            if member["member_id"] == view.self_id:
                return json_response("The transfer command is submitted.")
            try:
                self.pd.local_etcd.move_leader(member["member_id"], timeout=self.pd.op_timeout * 2)
            except EtcdError as exc:
                last = str(exc)
                continue
            log.info("moved etcd leader", to=member["name"], by=req.path)
            return json_response(
                "The resign command is submitted." if target is None else "The transfer command is submitted."
            )
        return _error(500, last or "no valid pd to transfer leader")

    # -- stores ----------------------------------------------------------------------------
    # Store state lives in the PD leader's memory (pd/stores.py StoreBook); followers
    # redirect store requests to the leader, as real PD's API redirector does.
    def _leader_book(self, req: Request) -> tuple[list[dict[str, Any]], float | None] | Response:
        is_leader, urls = self.pd.live_leadership()
        if not is_leader:
            return self._redirect(req, urls)
        try:
            if not self.pd.stores.loaded:
                self.pd.stores.load()
            return self.pd.stores.snapshot()
        except (NotLoaded, EtcdUnavailable) as exc:
            return _error(503, str(exc))
        except EtcdError as exc:
            return _error(500, str(exc))

    def _redirect(self, req: Request, urls: list[str]) -> Response:
        if req.headers.get("pd-redirector"):
            return _error(503, "not leader")
        if not urls:
            return _error(503, "no leader")
        for url in urls:
            try:
                result = httpclient.request(
                    req.method, f"{url}{req.path}", raw=req.body or None, timeout=self.pd.op_timeout,
                    headers={"PD-Redirector": self.pd.cfg.name},
                )
            except httpclient.Unreachable:
                continue
            return Response(status=result.status, raw=result.body)
        return _error(503, "leader unreachable")

    def stores(self, req: Request) -> Response:
        book = self._leader_book(req)
        if isinstance(book, Response):
            return book
        return json_response(stores_response(book[0], time.time(), self.pd.thresholds))

    def store(self, req: Request) -> Response:
        book = self._leader_book(req)
        if isinstance(book, Response):
            return book
        body = stores_response(book[0], time.time(), self.pd.thresholds)
        for info in body["stores"]:
            if str(info["store"]["id"]) == req.params["id"]:
                return json_response(info)
        return _error(404, "[PD:core:ErrStoreNotFound]store id " + req.params["id"] + " not found")

    def store_heartbeat(self, req: Request) -> Response:
        try:
            beat = req.json()
            if not isinstance(beat, dict) or not beat.get("address"):
                raise ValueError("address is required")
        except ValueError as exc:
            return _error(400, str(exc))
        if not self.pd.live_leadership()[0]:
            # TiKV's PD client talks to the leader only; it moves on to the next endpoint.
            return _error(503, "not leader")
        try:
            if not self.pd.stores.loaded:
                self.pd.stores.load()
            store_id = self.pd.stores.heartbeat(beat)
        except (NotLoaded, EtcdUnavailable) as exc:
            return _error(503, str(exc))
        except EtcdError as exc:
            return _error(500, str(exc))
        return json_response({"store_id": store_id})

    # -- info ------------------------------------------------------------------------------
    def status(self, req: Request) -> Response:
        return json_response({
            "build_ts": "2023-12-01 00:00:00",
            "version": release_version(),
            "git_hash": "standin",
            "start_timestamp": int(self.pd.started_at),
        })

    def version(self, req: Request) -> Response:
        return json_response({"version": release_version()})

    def config(self, req: Request) -> Response:
        """PD's effective config (tikv/pd server/config/config.go JSON names), with the
        stand-in's own scaled timers: raft tick/election of its etcd, the leader lease it
        keeps (its election timeout, whole seconds) and when a store counts as Down."""
        cfg = self.pd.cfg
        tick_ms, election_ms = raft_timings(cfg.tick_interval, cfg.election_interval)
        return json_response({
            "client-urls": ",".join(cfg.client_urls),
            "peer-urls": ",".join(cfg.peer_urls),
            "advertise-client-urls": ",".join(cfg.advertise_client_urls),
            "advertise-peer-urls": ",".join(cfg.advertise_peer_urls),
            "name": cfg.name,
            "data-dir": cfg.data_dir,
            "initial-cluster": cfg.initial_cluster,
            "join": cfg.join,
            "lease": max(1, math.ceil(election_ms / 1000)),
            "TickInterval": go_duration(tick_ms / 1000),
            "ElectionInterval": go_duration(election_ms / 1000),
            "schedule": {"max-store-down-time": go_duration(self.pd.thresholds.down_after)},
            "replication": {"max-replicas": cfg.max_replicas, "location-labels": ""},
            "pd-server": {"use-region-storage": "true"},
        })

    def cluster(self, req: Request) -> Response:
        try:
            view = self.pd.membership.view()
        except EtcdError as exc:
            return _error(500, str(exc))
        return json_response({"id": view.cluster_id, "max_peer_count": self.pd.cfg.max_replicas})

    def cluster_status(self, req: Request) -> Response:
        book = self._leader_book(req)
        if isinstance(book, Response):
            return book
        records, boot = book
        body = stores_response(records, time.time(), self.pd.thresholds)
        serving = [s for s in body["stores"] if s["store"]["state_name"] in ("Up", "Disconnected")]
        return json_response({
            "raft_bootstrap_time": go_time(boot) if boot else "0001-01-01T00:00:00Z",
            "is_initialized": bool(boot) and len(serving) >= self.pd.cfg.max_replicas,
            "replication_status": {"mode": "majority"},
        })

    # -- etcd gateway --------------------------------------------------------------------
    def proxy_v3(self, req: Request) -> Response:
        query = "&".join(f"{k}={v}" for k, values in req.query.items() for v in values)
        url = f"{ETCD_CLIENT_URL}{req.path}" + (f"?{query}" if query else "")
        try:
            result = httpclient.request(req.method, url, raw=req.body, timeout=self.pd.proxy_timeout)
        except httpclient.Unreachable as exc:
            return json_response(
                {"error": "etcdserver: request timed out", "message": f"etcdserver: request timed out ({exc})", "code": 14},
                503,
            )
        return Response(status=result.status, raw=result.body, content_type="application/json")
