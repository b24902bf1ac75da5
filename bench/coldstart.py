"""Cold start of a 3 PD / 3 TiKV / 2 TiDB stand-in cluster: the plugin vs raw Docker.

Two ways to get the *same* containers to "SQL-ready":

* **plugin** — :func:`pytest_tidb_ha.cluster.lifecycle.start_cluster`, exactly what the
  ``tidb_cluster`` fixture calls on a cold pool (testcontainers, pinned loopback ports,
  image check, readiness stages with the default 0.5 s poll);
* **raw** — the specs rendered by :func:`pytest_tidb_ha.cluster.specs.render_specs`
  carried out with the docker SDK alone (network, volumes, ``create`` + config file
  + ``start``), then the readiness checks written out by hand with the same stages
  and the same poll interval: every PD ``/pd/api/v1/health`` healthy, every store
  ``Up`` in ``/pd/api/v1/stores``, every TiDB ``/status`` 200 and ``SELECT 1``.

The ratio plugin/raw is what the plugin's machinery costs on top of Docker and the
cluster's own start-up. Runs alternate (plugin, raw, plugin, raw) so load drift on the
shared machine hits both; the medians are reported. The time to tear down is measured
too. Issue 3's acceptance is a 3/3/2 cluster SQL-ready in under 60 s.

Standalone: ``python bench/coldstart.py [--reps 2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
    BenchError,
    Budget,
    Row,
    Section,
    leftovers,
    median,
    new_run_id,
    ratio,
    remove_run,
    secs,
    verdict,
    write_json,
)

from pytest_tidb_ha.cluster.lifecycle import docker_client, start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import (
    PD_CLIENT_PORT,
    TIDB_PORT,
    TIDB_STATUS_PORT,
    ClusterSettings,
    ContainerSpec,
    render_specs,
)
from pytest_tidb_ha.scenario.model import Topology

log = logging.getLogger("pytest_tidb_ha.bench")

TOPOLOGY = Topology(3, 3, 2)
ACCEPTANCE_SECONDS = 60.0  # issue 3: 3/3/2 SQL-ready in < 60 s
STAGE_TIMEOUT = 120.0
#: What one repetition (both ways, with teardown) costs here, to plan repetitions.
EXPECTED_REP_SECONDS = 110.0


def settings_for(image: str, run_id: str) -> ClusterSettings:
    """The settings both ways share (stand-in image for all three roles, time scale 1)."""
    env = MappingProxyType({"STANDIN_TIME_SCALE": "1.0"})
    return ClusterSettings(
        run_id=run_id,
        topology=TOPOLOGY,
        images=MappingProxyType({c: image for c in ("pd", "tikv", "tidb")}),
        env=MappingProxyType({c: env for c in ("pd", "tikv", "tidb")}),
        pull_missing=False,
        startup_timeout=STAGE_TIMEOUT,
        name_prefix="tidb-ha-bench",
    )


# -- plugin ---------------------------------------------------------------------------
_WAITED = re.compile(r": (?:PD members|TiKV stores|TiDB) .* after ([0-9.]+)s$")


class _WaitLog(logging.Handler):
    """Sums the readiness waits the cluster code logs ("... after 2.8s").

    Only a breakdown for the table (waits vs container starts); the headline
    figure is the wall time of :func:`start_cluster`, measured here.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.waits: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = _WAITED.search(record.getMessage())
        if m:
            self.waits.append(float(m.group(1)))


@contextlib.contextmanager
def _capture_waits() -> Iterator[_WaitLog]:
    logger = logging.getLogger("pytest_tidb_ha.cluster")
    handler, level, propagate = _WaitLog(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the bench's own output stays quiet
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def plugin_once(docker: Any, image: str,
                settings: ClusterSettings | None = None) -> dict[str, float]:
    """One cold start and stop through the plugin's own cluster code (*settings*: another
    topology or image set than the stand-in 3/3/2; its run id must be a fresh bench id)."""
    s = settings or settings_for(image, new_run_id("p"))
    with _capture_waits() as waits:
        began = time.monotonic()
        cluster = start_cluster(s, docker)
        ready = time.monotonic() - began
    try:
        client = cluster.client(connect_timeout=2, read_timeout=5)
        for node in ("tidb-0", "tidb-1"):  # proof: both TiDBs answer after start_cluster
            client.query("SELECT 1", node=node)
    finally:
        t = time.monotonic()
        stop_cluster(cluster)
        stop = time.monotonic() - t
    left = leftovers(docker, s.run_id)
    if left:
        remove_run(docker, s.run_id)
        raise BenchError(f"plugin left {left} behind after stop_cluster")
    waited = sum(waits.waits) if len(waits.waits) == 3 else float("nan")
    return {"ready": ready, "stop": stop, "waits": waited, "starts": ready - waited}


# -- raw docker -----------------------------------------------------------------------
def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _raw_container(docker: Any, spec: ContainerSpec, network: str,
                   spent: list[float]) -> Any:
    """``docker create`` + copy the config file in + ``docker start`` for one spec."""
    began = time.monotonic()
    endpoint = docker.api.create_endpoint_config(aliases=[spec.node])
    c = docker.containers.create(
        spec.image,
        command=list(spec.command),
        entrypoint=list(spec.entrypoint),
        environment=dict(spec.env),
        name=spec.container_name,
        hostname=spec.node,
        labels=dict(spec.labels),
        ports={f"{p}/tcp": ("127.0.0.1",) for p in spec.ports},  # random loopback port
        volumes={v.volume: {"bind": v.target, "mode": "ro" if v.read_only else "rw"}
                 for v in spec.volumes},
        network=network,
        networking_config={network: endpoint},
    )
    if spec.files:
        c.put_archive("/", _tar(dict(spec.files)))
    c.start()
    spent.append(time.monotonic() - began)
    return c


def _host_port(c: Any, port: int) -> int:
    c.reload()
    binding = (c.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    if not binding:
        raise BenchError(f"{c.name}: port {port} not published")
    return int(binding[0]["HostPort"])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read() or b"null")


def _poll(what: str, probe: Callable[[], bool], containers: list[Any], interval: float) -> None:
    """Probe until true; fail on an exited container or after STAGE_TIMEOUT."""
    deadline = time.monotonic() + STAGE_TIMEOUT
    last = "not probed yet"
    while True:
        try:
            if probe():
                return
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last = f"{type(exc).__name__}: {exc}"
        for c in containers:
            c.reload()
            if c.status in ("exited", "dead"):
                logs = c.logs(tail=15).decode(errors="replace")
                raise BenchError(f"raw start: {c.name} {c.status} while waiting for {what}:\n{logs}")
        if time.monotonic() > deadline:
            raise BenchError(f"raw start: timed out after {STAGE_TIMEOUT:.0f}s waiting for "
                             f"{what}; last: {last}")
        time.sleep(interval)


def raw_once(docker: Any, image: str) -> dict[str, float]:
    """The same containers with the docker SDK and hand-written readiness checks."""
    import pymysql

    s = settings_for(image, new_run_id("r"))
    specs = render_specs(s)
    by = {c: [sp for sp in specs if sp.component == c] for c in ("pd", "tikv", "tidb")}
    interval = s.poll_interval
    began = time.monotonic()
    stages: dict[str, float] = {}
    spent: list[float] = []  # seconds per container create+copy+start
    try:
        net = docker.networks.create(s.cluster_name, driver="bridge", labels=s.base_labels())
        for sp in specs:
            for v in sp.volumes:
                docker.volumes.create(v.volume, labels=dict(sp.labels))
        pds = [_raw_container(docker, sp, net.name, spent) for sp in by["pd"]]
        pd_urls = [f"http://127.0.0.1:{_host_port(c, PD_CLIENT_PORT)}" for c in pds]

        def pd_ok() -> bool:
            for url in pd_urls:
                health = _get_json(url + "/pd/api/v1/health")
                if len(health) != len(pds) or not all(h.get("health") for h in health):
                    return False
            return True

        _poll("PD healthy", pd_ok, pds, interval)
        stages["pd"] = time.monotonic() - began
        tikvs = [_raw_container(docker, sp, net.name, spent) for sp in by["tikv"]]

        def stores_ok() -> bool:
            stores = _get_json(pd_urls[0] + "/pd/api/v1/stores").get("stores") or []
            up = [st for st in stores if (st.get("store") or {}).get("state_name") == "Up"]
            return len(up) == len(tikvs)

        _poll("stores Up", stores_ok, pds + tikvs, interval)
        stages["tikv"] = time.monotonic() - began
        tidbs = [_raw_container(docker, sp, net.name, spent) for sp in by["tidb"]]
        endpoints = [(_host_port(c, TIDB_STATUS_PORT), _host_port(c, TIDB_PORT)) for c in tidbs]

        def tidb_ok() -> bool:
            for status_port, sql_port in endpoints:
                with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/status",
                                            timeout=3) as resp:
                    if resp.status != 200:
                        return False
                conn = pymysql.connect(host="127.0.0.1", port=sql_port, user="root",
                                       connect_timeout=2, read_timeout=5, write_timeout=5)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                        if cur.fetchall() != ((1,),):
                            return False
                finally:
                    conn.close()
            return True

        _poll("TiDB /status + SELECT 1", tidb_ok, pds + tikvs + tidbs, interval)
        ready = time.monotonic() - began
    finally:
        t = time.monotonic()
        remove_run(docker, s.run_id)
        stop = time.monotonic() - t
    left = leftovers(docker, s.run_id)
    if left:
        raise BenchError(f"raw run left {left} behind")
    starts = sum(spent)
    return {"ready": ready, "stop": stop, "starts": starts, "waits": ready - starts,
            **{f"stage_{k}": v for k, v in stages.items()}}


# -- the bench ------------------------------------------------------------------------
def repetition(docker: Any, image: str, n: int) -> tuple[dict[str, float], dict[str, float]]:
    """One plugin start then one raw start of the same cluster (never both at once)."""
    log.warning("cold start %d: plugin", n)
    plugin = plugin_once(docker, image)
    log.warning("cold start %d: plugin %.1fs; raw docker", n, plugin["ready"])
    raw = raw_once(docker, image)
    log.warning("cold start %d: raw %.1fs", n, raw["ready"])
    return plugin, raw


def summarize(plugin: list[dict[str, float]], raw: list[dict[str, float]],
              image: str) -> Section:
    """Medians, the ratio and the table rows of the repetitions that ran."""
    section = Section("coldstart")
    p = median(x["ready"] for x in plugin)
    r = median(x["ready"] for x in raw)
    rate = p / r if r else float("nan")
    section.data = {
        "topology": "3 PD / 3 TiKV / 2 TiDB", "image": image, "reps": len(plugin),
        "plugin": plugin, "raw": raw,
        "plugin_ready_median": round(p, 2), "raw_ready_median": round(r, 2),
        "ratio_plugin_over_raw": round(rate, 3),
        "plugin_stop_median": round(median(x["stop"] for x in plugin), 2),
        "raw_stop_median": round(median(x["stop"] for x in raw), 2),
        "acceptance_seconds": ACCEPTANCE_SECONDS,
        "acceptance_met": p < ACCEPTANCE_SECONDS,
    }

    def runs(values: list[dict[str, float]]) -> str:
        return ", ".join(f"{x['ready']:.1f}" for x in values)

    def split(values: list[dict[str, float]]) -> str:
        return (f"container starts {median(x['starts'] for x in values):.1f} s + readiness "
                f"waits {median(x['waits'] for x in values):.1f} s")

    section.rows = [
        Row("cold start 3/3/2 to SQL-ready", secs(p),
            f"plugin: median of {len(plugin)} ({runs(plugin)}), {split(plugin)}; raw docker: "
            f"median of {len(raw)} ({runs(raw)}), {split(raw)}; teardown: plugin "
            f"{median(x['stop'] for x in plugin):.1f} s, raw {median(x['stop'] for x in raw):.1f} s",
            goal=f"< {ACCEPTANCE_SECONDS:.0f} s (issue 3)",
            anchor=f"raw docker, same containers and checks: {secs(r)}",
            ratio=ratio(p, r), verdict=verdict(p < ACCEPTANCE_SECONDS)),
    ]
    return section


def run(image: str, budget: Budget, *, reps: int = 2, reserve: float = 0.0) -> Section:
    """Alternate plugin/raw cold starts (*reps* of each, fewer if the budget says so)."""
    docker = docker_client()
    plugin: list[dict[str, float]] = []
    raw: list[dict[str, float]] = []
    try:
        for i in range(reps):
            if i and not budget.allows(EXPECTED_REP_SECONDS, reserve=reserve):
                log.warning("cold start: budget allows %d repetition(s) only", i)
                break
            p, r = repetition(docker, image, i + 1)
            plugin.append(p)
            raw.append(r)
    finally:
        docker.close()
    return summarize(plugin, raw, image)


def main(argv: list[str] | None = None) -> int:
    from common import standin_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    section = run(standin_image(), Budget(600), reps=args.reps)
    for row in section.rows:
        print(f"{row.figure:45} {row.value:>10}  {row.detail}")
    write_json(RESULTS / "coldstart.json", section.to_json())
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
