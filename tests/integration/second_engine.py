"""A second Docker engine on this machine, for the multi-engine test — and nothing left after it.

``second_engine()`` starts ``dockerd`` with everything of its own, so the first engine
is not disturbed:

* socket, data root, exec root (its containerd lives there), pidfile and log in one
  temporary folder;
* no default bridge (``--bridge=none``), user networks from an address pool no route
  on this machine uses (10.213.0.0/16 or the next free /16);
* ``--iptables=false --ip-masq=false``: it never touches the host's DOCKER chains.
  Published ports then go through ``docker-proxy``; but with ``br_netfilter`` the
  host's FORWARD chain (policy DROP, set by the first engine) also sees traffic
  *inside* a bridge, so one ACCEPT rule for the pool (and only the pool, with a
  comment naming the folder) lets its containers talk to each other;
* its containers' cgroups under a parent of their own.

It also listens on a loopback TCP port (``tcp://127.0.0.1:PORT``, no TLS, only for the
test's duration), so the plugin treats it as a *remote* engine: faults go through
the helper container there.

On exit (also on errors) it stops the daemon (SIGTERM, then SIGKILL), removes the
rule, unmounts whatever it left mounted, removes its cgroup folders and its folder,
and returns what it could not clean as :attr:`SecondEngine.leftovers`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def default_engine_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _routes() -> str:
    return subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                          check=False).stdout


def free_pool(routes: str) -> str:
    """The first 10.x.0.0/16 from 10.213 on that no route overlaps."""
    used = []
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            used.append(ipaddress.ip_network(word, strict=False))
    for second in range(213, 256):
        pool = ipaddress.ip_network(f"10.{second}.0.0/16")
        if not any(pool.overlaps(u) for u in used if u.prefixlen > 0):
            return str(pool)
    raise RuntimeError("no free 10.x.0.0/16 for the second engine's networks")


@dataclass
class SecondEngine:
    root: Path
    unix_url: str
    tcp_url: str
    pool: str
    log: Path
    leftovers: list[str] = field(default_factory=list)

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 300
               ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", "-H", self.unix_url, *args], input=input,
                              capture_output=True, timeout=timeout, check=True)

    def load_images(self, refs: Sequence[str], source_url: str) -> None:
        """``docker save REFS | docker -H <this engine> load`` (from the first engine)."""
        save = subprocess.Popen(["docker", "-H", source_url, "save", *refs],
                                stdout=subprocess.PIPE)
        try:
            load = subprocess.run(["docker", "-H", self.unix_url, "load"], stdin=save.stdout,
                                  capture_output=True, timeout=600, check=False)
        finally:
            if save.stdout is not None:
                save.stdout.close()
            save.wait(timeout=60)
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"loading {refs} into {self.unix_url} failed: "
                               f"{load.stderr.decode(errors='replace')[-500:]}")


def _rule(pool: str, comment: str) -> list[str]:
    return ["FORWARD", "-s", pool, "-d", pool, "-m", "comment", "--comment", comment,
            "-j", "ACCEPT"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def _mounts_under(root: Path) -> list[str]:
    text = Path("/proc/mounts").read_text()
    points = [line.split()[1] for line in text.splitlines() if len(line.split()) > 1]
    return sorted((p for p in points if p.startswith(str(root) + "/")), key=len, reverse=True)


def _cgroup_dirs(name: str) -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    found = [d / name for d in CGROUP_ROOT.iterdir() if (d / name).is_dir()]
    if (CGROUP_ROOT / name).is_dir():  # cgroup v2
        found.append(CGROUP_ROOT / name)
    return found


def _remove_cgroup(path: Path) -> None:
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                      reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    path.rmdir()


def _links_in(pool: str) -> list[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                         check=False).stdout
    net = ipaddress.ip_network(pool)
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_interface(parts[3]).ip in net:
                    found.append(parts[1])
    return found


@contextlib.contextmanager
def second_engine() -> Iterator[SecondEngine]:
    """Start the engine; on exit stop it and clean everything (see the module doc)."""
    root = Path(tempfile.mkdtemp(prefix="tidbha-e2.", dir="/tmp"))  # short: socket path limit
    name = root.name
    pool = free_pool(_routes())
    port = _free_port()
    engine = SecondEngine(root, f"unix://{root}/docker.sock", f"tcp://127.0.0.1:{port}", pool,
                          root / "dockerd.log")
    subprocess.run(["iptables", "-w", "5", "-I", *_rule(pool, name)], check=True,
                   capture_output=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        with engine.log.open("wb") as log:
            proc = subprocess.Popen(
                ["dockerd", "-H", engine.unix_url, "-H", f"tcp://127.0.0.1:{port}", "--tls=false",
                 "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                 "--pidfile", str(root / "docker.pid"), "--bridge=none", "--iptables=false",
                 "--ip-masq=false", "--ip6tables=false",
                 "--default-address-pool", f"base={pool},size=24",
                 "--cgroup-parent", f"/{name}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            ok = subprocess.run(["docker", "-H", engine.unix_url, "version"],
                                capture_output=True, check=False).returncode == 0
            if ok:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the second dockerd did not come up:\n"
                                   f"{engine.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield engine
    finally:
        if proc is not None:
            _stop(proc)
        done = subprocess.run(["iptables", "-w", "5", "-D", *_rule(pool, name)],
                              capture_output=True, check=False)
        if done.returncode != 0:
            engine.leftovers.append(f"iptables rule for {pool}: {done.stderr!r}")
        for point in _mounts_under(root):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
            engine.leftovers.append(f"mount {point} (unmounted)")
        for cg in _cgroup_dirs(name):
            try:
                _remove_cgroup(cg)
            except OSError as exc:
                engine.leftovers.append(f"cgroup {cg}: {exc}")
        engine.leftovers += [f"link {link}" for link in _links_in(pool)]
        alive = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True,
                               check=False).stdout.split()
        engine.leftovers += [f"process {pid}" for pid in alive]
        shutil.rmtree(root, ignore_errors=True)
        if root.exists():
            engine.leftovers.append(f"folder {root}")
