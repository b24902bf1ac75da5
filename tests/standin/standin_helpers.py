"""Helpers for the stand-in's own tests: polling with a story, labelled containers, faults.

`StandinNet` owns one private Docker network and the containers of one test, named after
the cluster's node names (``pd-0``, ``tikv-0``, ...), labelled ``org.pytest-tidb-ha.*`` and
removed by `close()`.  The host talks to them by their IPs on that network.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

IMAGE_DIR = Path(__file__).parent / "image"
if str(IMAGE_DIR) not in sys.path:
    # The image's own modules (common.flags, common.etcd) are plain stdlib Python: the
    # tests import them directly to parse flags and to talk to etcd like the TiDB role.
    sys.path.insert(0, str(IMAGE_DIR))

log = logging.getLogger("pytest_tidb_ha.standin.tests")
T = TypeVar("T")

LABEL_PREFIX = "org.pytest-tidb-ha"
ENTRYPOINTS = {"pd": "/pd-server", "tikv": "/tikv-server", "tidb": "/tidb-server"}


class WaitTimeout(AssertionError):
    """A poll expired; the message tells what was awaited, the last value and the logs."""


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 0.2,
             story: Callable[[], str] | None = None) -> T:
    """Poll ``probe`` until it returns a truthy value; raise `WaitTimeout` with a story."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            got = probe()
        except Exception as exc:  # noqa: BLE001 - the probe's failure is part of the story
            last = f"{exc.__class__.__name__}: {exc}"
        else:
            if got:
                return got
            last = got
        if time.monotonic() >= deadline:
            details = story() if story else ""
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}; last: {last!r}\n{details}")
        time.sleep(interval)


class StandinNet:
    """Containers of one test on one private network (node name = hostname = alias)."""

    def __init__(self, client: Any, image: str, test_name: str) -> None:
        self.client = client
        self.image = image
        self.run_id = uuid.uuid4().hex[:8]
        self.labels = {
            f"{LABEL_PREFIX}.plugin": "pytest-tidb-ha",
            f"{LABEL_PREFIX}.run": self.run_id,
            f"{LABEL_PREFIX}.pid": str(os.getpid()),
            f"{LABEL_PREFIX}.host": socket.gethostname(),
            f"{LABEL_PREFIX}.cluster": f"standin-{self.run_id}",
        }
        self.prefix = f"standin-{self.run_id}"
        self.network = client.networks.create(f"{self.prefix}-net", driver="bridge",
                                              labels={**self.labels, f"{LABEL_PREFIX}.component": "helper"})
        self.containers: dict[str, Any] = {}
        log.info("%s: network %s", test_name, self.network.name)

    # -- lifecycle -------------------------------------------------------------------------
    def run(self, name: str, component: str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
            cap_net_admin: bool = True, volumes: Mapping[str, Mapping[str, str]] | None = None) -> Any:
        """Start container ``name`` running ``/<component>-server args`` (detached)."""
        container = self.client.containers.run(
            self.image,
            entrypoint=[ENTRYPOINTS[component]],
            command=list(args),
            name=f"{self.prefix}-{name}",
            hostname=name,
            detach=True,
            environment=dict(env or {}),
            labels={**self.labels, f"{LABEL_PREFIX}.component": component},
            network=self.network.name,
            # Alias = node name, set at creation: re-connecting a running container would
            # cut its first connections (and DNS) mid-flight.
            networking_config={self.network.name: self.client.api.create_endpoint_config(aliases=[name])},
            cap_add=["NET_ADMIN"] if cap_net_admin else [],
            volumes=dict(volumes or {}),
        )
        self.containers[name] = container
        return container

    def pd(self, name: str = "pd-0", members: Sequence[str] = ("pd-0",), *,
           env: Mapping[str, str] | None = None, extra: Sequence[str] = ()) -> Any:
        initial = ",".join(f"{m}=http://{m}:2380" for m in members)
        return self.run(name, "pd", [
            f"--name={name}", "--data-dir=/data/pd",
            "--client-urls=http://0.0.0.0:2379", f"--advertise-client-urls=http://{name}:2379",
            "--peer-urls=http://0.0.0.0:2380", f"--advertise-peer-urls=http://{name}:2380",
            f"--initial-cluster={initial}", *extra,
        ], env=env)

    def pd_cluster(self, n: int, *, env: Mapping[str, str] | None = None) -> list[str]:
        names = [f"pd-{i}" for i in range(n)]
        for name in names:
            self.pd(name, names, env=env)
        return names

    def tikv(self, name: str = "tikv-0", pds: Sequence[str] = ("pd-0",), *,
             env: Mapping[str, str] | None = None, extra: Sequence[str] = ()) -> Any:
        return self.run(name, "tikv", [
            "--addr=0.0.0.0:20160", f"--advertise-addr={name}:20160",
            "--status-addr=0.0.0.0:20180", f"--advertise-status-addr={name}:20180",
            f"--pd-endpoints={','.join(f'{p}:2379' for p in pds)}", "--data-dir=/data/tikv", *extra,
        ], env=env)

    def oneshot(self, component: str, args: Sequence[str], *, timeout: float = 30.0,
                volumes: Mapping[str, Mapping[str, str]] | None = None) -> tuple[int | None, str, str]:
        """Run ``/<component>-server args`` to completion: (exit code or None, stdout, stderr).

        None means it was still running after ``timeout`` (it is then removed).
        """
        container = self.client.containers.run(
            self.image, entrypoint=[ENTRYPOINTS[component]], command=list(args), detach=True,
            labels={**self.labels, f"{LABEL_PREFIX}.component": component},
            network=self.network.name, volumes=dict(volumes or {}),
        )
        try:
            try:
                code: int | None = int(container.wait(timeout=timeout)["StatusCode"])
            except Exception:  # noqa: BLE001 - requests' ReadTimeout: still running
                code = None
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            err = container.logs(stdout=False, stderr=True).decode(errors="replace")
            return code, out, err
        finally:
            container.remove(force=True, v=True)

    def container(self, name: str) -> Any:
        container = self.containers[name]
        container.reload()
        return container

    def pause(self, name: str) -> None:
        """`docker pause` with retries: the cgroup-v1 freezer sometimes reports
        "unable to freeze" while the processes are busy; a retry freezes them."""
        import docker.errors

        for attempt in range(5):
            try:
                self.container(name).pause()
                return
            except docker.errors.APIError as exc:
                if "unable to freeze" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.2)

    def unpause(self, name: str) -> None:
        container = self.container(name)
        if container.status == "paused":
            container.unpause()

    def ip(self, name: str) -> str:
        networks = self.container(name).attrs["NetworkSettings"]["Networks"]
        return str(networks[self.network.name]["IPAddress"])

    def url(self, name: str, port: int) -> str:
        return f"http://{self.ip(name)}:{port}"

    def logs(self, name: str, tail: int = 40) -> str:
        try:
            return str(self.containers[name].logs(tail=tail).decode(errors="replace"))
        except Exception as exc:  # noqa: BLE001
            return f"<no logs: {exc}>"

    def story(self, *names: str) -> str:
        """Status and last log lines of the named containers (all when none given)."""
        parts = []
        for name in names or tuple(self.containers):
            try:
                status = self.container(name).status
            except Exception as exc:  # noqa: BLE001
                status = f"unknown ({exc})"
            lines = [line for line in self.logs(name, 60).splitlines() if not line.startswith("etcd: ")]
            parts.append(f"--- {name} ({status}) ---\n" + "\n".join(lines[-15:]))
        return "\n".join(parts)

    def close(self) -> None:
        """Remove every container carrying this net's run label, then the network.

        By label, not only by the names this object recorded: an interrupt (SIGTERM, Ctrl-C)
        can land after Docker created a container and before ``run`` recorded it.
        """
        found = {c.id: c for c in self.client.containers.list(
            all=True, filters={"label": f"{LABEL_PREFIX}.run={self.run_id}"})}
        for container in self.containers.values():
            found.setdefault(container.id, container)
        for container in found.values():
            try:
                container.remove(force=True, v=True)
            except Exception as exc:  # noqa: BLE001 - keep removing the rest
                if "No such container" not in str(exc):
                    log.warning("could not remove %s: %s", container.name, exc)
        for _ in range(5):
            try:
                self.network.remove()
                break
            except Exception:  # noqa: BLE001 - "has active endpoints" right after removal
                time.sleep(0.5)

    # -- HTTP --------------------------------------------------------------------------------
    def http(self, name: str, port: int, path: str, method: str = "GET", body: Any = None,
             timeout: float = 5.0) -> tuple[int, Any]:
        """(status, parsed JSON or text) from ``name:port`` — raises `Unreachable` on no answer."""
        from common import httpclient

        result = httpclient.request(method, self.url(name, port) + path, body, timeout=timeout)
        try:
            return result.status, result.json()
        except ValueError:
            return result.status, result.body.decode(errors="replace")

    def pd_get(self, name: str, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        return self.http(name, 2379, "/pd/api/v1" + path, timeout=timeout)

    # -- faults ------------------------------------------------------------------------------
    def iptables(self, name: str, *rule: str) -> None:
        code, out = self.container(name).exec_run(["iptables", *rule])
        assert code == 0, f"iptables {' '.join(rule)} in {name}: {out.decode(errors='replace')}"

    def isolate(self, name: str, peers: Sequence[str]) -> None:
        """Drop all traffic between ``name`` and each peer (rules inside ``name``'s netns)."""
        for peer in peers:
            ip = self.ip(peer)
            self.iptables(name, "-I", "INPUT", "-s", ip, "-j", "DROP")
            self.iptables(name, "-I", "OUTPUT", "-d", ip, "-j", "DROP")

    def heal(self, name: str) -> None:
        self.iptables(name, "-F", "INPUT")
        self.iptables(name, "-F", "OUTPUT")


def pd_leader(net: StandinNet, via: str, timeout: float = 5.0) -> str | None:
    """The leader's name as PD ``via`` reports it (None when it has none)."""
    status, body = net.pd_get(via, "/leader", timeout=timeout)
    return str(body["name"]) if status == 200 and isinstance(body, dict) else None


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:2000]
