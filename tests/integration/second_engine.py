"""A second Docker engine on this machine, for the multi-engine test — and nothing left after it.

``second_engine()`` starts ``dockerd`` with everything of its own, so the first engine
is not disturbed:

* socket, data root, exec root (its containerd lives there), pidfile and log in one
  temporary folder;
* a default bridge of its own (``--bridge=e2br…``, created here on the pool's last
  /24 and deleted at the end) -- never ``--bridge=none``: a dockerd started with it
  deletes the host's ``docker0`` (moby's ``removeDefaultBridgeInterface``), cutting
  the first engine's default network from under it; user networks come from an
  address pool no route on this machine uses (10.213.0.0/16 or the next free /16);
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
and returns what it could not clean as :attr:`SecondEngine.leftovers`. A test run
killed with SIGKILL cannot do that: the folder names its owner's pid, and the next
``second_engine()`` cleans up after owners that are gone (:func:`reap_stale_engines`).
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

from pytest_tidb_ha.procs import process_alive

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


def free_pool(routes: str, taken: Sequence[str] = ()) -> str:
    """The first 10.x.0.0/16 from 10.213 on that no route overlaps and no other second
    engine (``taken``) uses."""
    used = [ipaddress.ip_network(t) for t in taken]
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


def bridge_name(root: Path) -> str:
    """The second engine's own default bridge: ``e2br`` + the folder's random suffix
    (link names have at most 15 characters)."""
    return "e2br" + root.name.rsplit(".", 1)[-1][-8:]


def bridge_address(pool: str) -> str:
    """``10.213.255.1/24`` for ``10.213.0.0/16``: the pool's last /24, which Docker's
    allocator (handing out /24s from the start) reaches last."""
    last = list(ipaddress.IPv4Network(pool).subnets(new_prefix=24))[-1]
    return f"{last.network_address + 1}/24"


def _delete_link(name: str) -> None:
    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


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


alive = process_alive


def _cleanup(root: Path, pool: str, proc: subprocess.Popen[bytes] | None) -> list[str]:
    """Stop the daemon and remove everything of it; returns what could not be removed."""
    leftovers: list[str] = []
    name = root.name
    if proc is not None:
        _stop(proc)
    else:  # a dead run's daemon: only its pidfile knows it
        with contextlib.suppress(OSError, ValueError):
            pid = int((root / "docker.pid").read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.5)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    done = subprocess.run(["iptables", "-w", "5", "-D", *_rule(pool, name)],
                          capture_output=True, check=False)
    if done.returncode != 0 and proc is not None:
        leftovers.append(f"iptables rule for {pool}: {done.stderr!r}")
    _delete_link(bridge_name(root))
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        leftovers.append(f"mount {point} (unmounted)")
    for cg in _cgroup_dirs(name):
        try:
            _remove_cgroup(cg)
        except OSError as exc:
            leftovers.append(f"cgroup {cg}: {exc}")
    leftovers += [f"link {link}" for link in _links_in(pool)]
    running = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True,
                           check=False).stdout.split()
    leftovers += [f"process {pid}" for pid in running]
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        leftovers.append(f"folder {root}")
    return leftovers


def reap_stale_engines(tmp: Path = Path("/tmp")) -> list[str]:
    """Clean up second engines whose test run died (their ``owner`` pid is gone)."""
    reaped = []
    for root in sorted(tmp.glob("tidbha-e2.*")):
        try:
            owner = int((root / "owner").read_text())
            pool = (root / "pool").read_text().strip()
        except (OSError, ValueError):
            continue  # being set up right now, or not ours
        if alive(owner):
            continue
        _cleanup(root, pool, None)
        reaped.append(str(root))
    return reaped


@contextlib.contextmanager
def second_engine() -> Iterator[SecondEngine]:
    """Start the engine; on exit stop it and clean everything (see the module doc)."""
    reap_stale_engines()
    root = Path(tempfile.mkdtemp(prefix="tidbha-e2.", dir="/tmp"))  # short: socket path limit
    name = root.name
    pool = free_pool(_routes(), [p.read_text().strip() for p in Path("/tmp").glob("tidbha-e2.*/pool")])
    port = _free_port()
    (root / "pool").write_text(pool)
    (root / "owner").write_text(str(os.getpid()))
    engine = SecondEngine(root, f"unix://{root}/docker.sock", f"tcp://127.0.0.1:{port}", pool,
                          root / "dockerd.log")
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["iptables", "-w", "5", "-I", *_rule(pool, name)], check=True,
                       capture_output=True)
        bridge = bridge_name(root)
        for step in (["ip", "link", "add", bridge, "type", "bridge"],
                     ["ip", "addr", "add", bridge_address(pool), "dev", bridge],
                     ["ip", "link", "set", bridge, "up"]):
            subprocess.run(step, check=True, capture_output=True)
        with engine.log.open("wb") as log:
            proc = subprocess.Popen(
                ["dockerd", "-H", engine.unix_url, "-H", f"tcp://127.0.0.1:{port}", "--tls=false",
                 "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                 "--pidfile", str(root / "docker.pid"), f"--bridge={bridge}", "--iptables=false",
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
        engine.leftovers += _cleanup(root, pool, proc)
