"""``io_delay``: real latency on a node's data directory through cgroup IO throttling.

The container's block-IO cgroup gets an IOPS limit on the device that backs its data
directory (``blkio.throttle.{read,write}_iops_device`` on cgroup v1, ``io.max`` on
v2). At ``N`` IOPS every IO waits about ``1/N`` seconds, and an fsync needs at least
one IO, so ``N = floor(1 / latency)`` makes every fsync take *at least* the requested
latency (measured in ``tests/integration/test_faults_io.py``). One IOPS is the lowest
limit: latencies above 1 s give about 1 s per IO.

Writing cgroup files needs root on the Docker host with a local engine; elsewhere the
fault is unsupported (the nemesis records why). The throttle is written down in the
container's ledger chain so a later run's reaper can lift it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .context import FaultContext, UnsupportedFault
from .ledger import ledger_add_script, ledger_remove_script
from .netns import container_pid, engine_is_local
from .network import seconds_of
from .verify import Verification, judge_fsync

#: Measures fsync from inside the node's cgroup: the process moves itself into the
#: container's cgroup (so the throttle applies to it) and writes through the node's root.
FSYNC_PROBE = r"""
import os, sys, time
procs, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(procs, "w") as f:
    f.write(str(os.getpid()))
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
lat = []
try:
    for i in range(n):
        os.pwrite(fd, os.urandom(4096), (i % 8) * 4096)
        t = time.perf_counter(); os.fsync(fd); lat.append(time.perf_counter() - t)
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
print(lat[len(lat) // 2])
"""

CGROUP_ROOT = Path("/sys/fs/cgroup")
DATA_DIR = "/data"


@dataclass(frozen=True)
class Throttle:
    """Where and how much: cgroup directory, version, device ``major:minor``, IOPS."""

    cgroup: Path
    version: int
    device: str
    iops: int

    def apply_writes(self) -> list[tuple[Path, str]]:
        if self.version == 1:
            return [(self.cgroup / f"blkio.throttle.{rw}_iops_device", f"{self.device} {self.iops}")
                    for rw in ("read", "write")]
        return [(self.cgroup / "io.max", f"{self.device} riops={self.iops} wiops={self.iops}")]

    def heal_writes(self) -> list[tuple[Path, str]]:
        if self.version == 1:
            return [(self.cgroup / f"blkio.throttle.{rw}_iops_device", f"{self.device} 0")
                    for rw in ("read", "write")]
        return [(self.cgroup / "io.max", f"{self.device} riops=max wiops=max")]


def iops_for(latency_s: float) -> int:
    """IOPS limit that makes each IO wait at least ``latency_s``."""
    if latency_s <= 0:
        raise ValueError(f"io_delay latency must be positive, got {latency_s}")
    return max(1, math.floor(1.0 / latency_s))


def cgroup_dir(proc_cgroup: str, root: Path = CGROUP_ROOT) -> tuple[int, Path]:
    """(version, directory) of the block-IO cgroup from ``/proc/<pid>/cgroup`` text (pure)."""
    v2: str | None = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if "blkio" in controllers.split(","):
            return 1, root / "blkio" / path.lstrip("/")
        if controllers == "":
            v2 = path
    if v2 is not None:
        return 2, root / v2.lstrip("/")
    raise UnsupportedFault("no blkio/io cgroup found for the container")


def mount_device(mountinfo: str, path: str) -> tuple[str, str]:
    """(major:minor, fstype) of the mount that holds ``path`` in mountinfo text (pure)."""
    best: tuple[int, str, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        mount_point = fields[4]
        fstype = fields[fields.index("-") + 1]
        holds = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if (holds or mount_point == "/") and (best is None or len(mount_point) > best[0]):
            best = (len(mount_point), fields[2], fstype)
    if best is None:
        raise UnsupportedFault(f"no mount holds {path}")
    return best[1], best[2]


def whole_disk(device: str, sys_block: Path = Path("/sys/dev/block")) -> str:
    """The disk of a partition (throttling only takes whole disks); disks map to themselves."""
    node = sys_block / device
    if (node / "partition").exists():
        parent = node.resolve().parent
        return (parent / "dev").read_text().strip()
    return device


def _docker_root_device(docker: Any) -> str:
    root = str(docker.info().get("DockerRootDir") or "/var/lib/docker")
    st = os.stat(root)
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


def plan_throttle(container: Any, docker: Any, latency_s: float, data_dir: str = DATA_DIR) -> Throttle:
    """Find cgroup and backing disk of ``container``'s ``data_dir`` on this host."""
    if os.geteuid() != 0 or not engine_is_local(docker):
        raise UnsupportedFault("io_delay writes cgroup files: it needs root on the local Docker host")
    pid = container_pid(container)
    if pid <= 0:
        raise UnsupportedFault(f"container {container.name} is not running")
    version, cg = cgroup_dir(Path(f"/proc/{pid}/cgroup").read_text())
    device, fstype = mount_device(Path(f"/proc/{pid}/mountinfo").read_text(), data_dir)
    if device.startswith("0:"):  # overlay/tmpfs: the writes land on Docker's root disk
        if fstype == "tmpfs":
            raise UnsupportedFault(f"{data_dir} of {container.name} is a tmpfs: no disk to slow down")
        device = _docker_root_device(docker)
    return Throttle(cgroup=cg, version=version, device=whole_disk(device), iops=iops_for(latency_s))


def write_all(writes: list[tuple[Path, str]], *, missing_ok: bool) -> None:
    for path, value in writes:
        try:
            path.write_text(value + "\n")
        except FileNotFoundError:
            if not missing_ok:
                raise
        except OSError as exc:
            if not missing_ok:
                raise UnsupportedFault(f"cannot write {value!r} to {path}: {exc}") from exc


class IoDelayFault:
    kind = "io_delay"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...], params: dict[str, object]) -> None:
        self.ctx = ctx
        self.targets = targets
        self.latency = seconds_of(params["latency"])
        self._plans: dict[str, Throttle] = {}

    def _marker(self, plan: Throttle) -> dict[str, object]:
        return {"kind": self.kind, "device": plan.device.replace(":", "."), "cg": f"v{plan.version}"}

    def apply(self) -> None:
        docker = self.ctx.cluster.docker
        for node in self.targets:
            c = self.ctx.container(node)
            plan = self._plans.get(node) or plan_throttle(c, docker, self.latency)
            self._plans[node] = plan
            self.ctx.exec(node, ledger_add_script(self.ctx.tag, self._marker(plan)), "ledger")
            write_all(plan.apply_writes(), missing_ok=False)

    def heal(self) -> None:
        for node in self.targets:
            plan = self._plans.get(node)
            if plan is None:
                continue
            write_all(plan.heal_writes(), missing_ok=True)  # cgroup gone with a stopped container
            self.ctx.exec(node, ledger_remove_script(self.ctx.tag, self._marker(plan)), "ledger",
                          missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {"throttles": {n: {"device": p.device, "iops": p.iops, "cgroup": f"v{p.version}"}
                              for n, p in self._plans.items()}}

    def verify(self, budget: float) -> Verification | None:
        """An fsync on the node's data directory, from a process in its cgroup."""
        import subprocess
        import sys

        node = next(iter(self._plans), None)
        if node is None:
            return None
        plan = self._plans[node]
        pid = container_pid(self.ctx.container(node))
        if pid <= 0:
            return None
        per_io = 1.0 / plan.iops
        n = 1 if per_io >= 0.5 else 3
        path = f"/proc/{pid}/root{DATA_DIR}/.tidb-ha-fsync-{self.ctx.tag.fault_id}"
        done = subprocess.run(  # noqa: S603 - this interpreter, our own probe
            [sys.executable, "-c", FSYNC_PROBE, str(plan.cgroup / "cgroup.procs"), path, str(n)],
            capture_output=True, text=True, timeout=10 + 4 * n * per_io, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"fsync probe in {node} failed: {done.stderr.strip()[-300:]}")
        return judge_fsync(float(done.stdout.strip().splitlines()[-1]), per_io, node)
