"""``disk_full``: a balloon file fills the node's data volume until ``free`` bytes are left.

It only ever fills a volume that has its own size limit: a case with ``disk_full``
makes the cluster layer create the affected components' data volumes as size-limited
tmpfs volumes (``diskSize``, default 256MiB; ``cluster/specs.py``), held mounted by a
keeper container so a killed node keeps its data. Before writing anything the fault
checks the volume Docker reports: not a size-limited tmpfs -> the fault is refused
(``UnsupportedFault``: "never fill a disk the host shares").

The balloon is ``.tidb-ha-balloon-<fault>`` at the top of the volume, allocated with
``posix_fallocate`` through ``/proc/<pid>/root`` of a process that sees the volume (the
node, or its keeper when the node is down) -- root on a local engine, as ``io_delay``.
Elsewhere ``fallocate``/``rm`` run inside the node (``docker exec``). A ledger marker
(kind ``disk_full``, the file) lets a reaper remove the balloon of a dead run; heal
deletes it, and so does the volume's removal with the cluster.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import PurePosixPath
from typing import Any

from ..cluster.specs import DATA_TARGETS, LABEL_KEEPER_FOR
from .context import FaultContext, UnsupportedFault
from .ledger import ledger_add_script, ledger_remove_script
from .netns import container_pid, engine_is_local
from .verify import Verification, judge_free


def balloon_name(fault_id: str) -> str:
    return f".tidb-ha-balloon-{fault_id}"


def limited_size(options: dict[str, Any] | None) -> int | None:
    """The size limit of a local-driver tmpfs volume from its ``Options`` (None: unlimited)."""
    opts = options or {}
    if opts.get("type") != "tmpfs":
        return None
    for part in str(opts.get("o") or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() == "size" and value.strip().isdigit():
            return int(value.strip())
    return None


def balloon_bytes(free_now: int, wanted: int) -> int:
    """How much to allocate so that ``wanted`` bytes stay free (0 when already below)."""
    return max(0, free_now - wanted)


class DiskFullFault:
    kind = "disk_full"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...], params: dict[str, object]) -> None:
        self.ctx = ctx
        self.targets = targets
        self.free = int(params.get("free", 0))  # type: ignore[call-overload]
        self.file = balloon_name(ctx.tag.fault_id)
        self._filled: dict[str, int] = {}  # node -> balloon bytes
        self._where: dict[str, str] = {}  # node -> path of the volume's top seen from the host
        self._size: dict[str, int] = {}

    # -- where the volume is -----------------------------------------------------------
    def _volume(self, node: str) -> tuple[str, str, int]:
        """(volume name, mount target, size limit) of the node's data volume."""
        c = self.ctx.container(node)
        c.reload()
        target = DATA_TARGETS.get(node.split("-")[0], "/data")
        mount = next((m for m in c.attrs.get("Mounts") or []
                      if m.get("Destination") == target and m.get("Type") == "volume"), None)
        if mount is None:
            raise UnsupportedFault(f"{node} has no data volume at {target}: disk_full fills "
                                   f"only a size-limited volume the cluster created for it")
        name = str(mount.get("Name"))
        attrs = self.ctx.cluster.docker.volumes.get(name).attrs
        size = limited_size(attrs.get("Options"))
        if size is None:
            raise UnsupportedFault(f"the data volume {name} of {node} has no size limit: "
                                   f"disk_full never fills a disk the host shares (the cluster "
                                   f"creates limited volumes for a case with disk_full)")
        return name, target, size

    def _host_path(self, node: str, target: str) -> str | None:
        """``/proc/<pid>/root<target>`` of the node, or of its keeper when it is down."""
        if os.geteuid() != 0 or not engine_is_local(self.ctx.cluster.docker):
            return None
        c = self.ctx.container(node)
        pid = container_pid(c)
        if pid <= 0:
            keepers = self.ctx.cluster.docker.containers.list(
                filters={"label": [f"{LABEL_KEEPER_FOR}={c.name}"]})
            pid = container_pid(keepers[0]) if keepers else 0
        return f"/proc/{pid}/root{target}" if pid > 0 else None

    def _free(self, node: str) -> int:
        where = self._where.get(node)
        if where is not None:
            st = os.statvfs(where)
            return int(st.f_bavail * st.f_frsize)
        target = DATA_TARGETS.get(node.split("-")[0], "/data")
        code, out = self.ctx.container(node).exec_run(
            ["sh", "-c", f"df -k -P {shlex.quote(target)} | tail -1"])
        if code != 0:
            raise UnsupportedFault(f"cannot read the free space of {node}: {out!r}")
        return int(out.decode().split()[3]) * 1024

    # -- apply / heal -------------------------------------------------------------------
    def apply(self) -> None:
        for node in self.targets:
            if node in self._filled:
                continue
            _name, target, size = self._volume(node)
            self._size[node] = size
            where = self._host_path(node, target)
            if where is not None:
                self._where[node] = where
            self.ctx.exec(node, ledger_add_script(self.ctx.tag, self._marker(target)), "ledger")
            need = balloon_bytes(self._free(node), self.free)
            self._fill(node, target, need)
            self._filled[node] = need

    def _marker(self, target: str) -> dict[str, object]:
        return {"kind": self.kind, "file": self.file}

    def _fill(self, node: str, target: str, nbytes: int) -> None:
        where = self._where.get(node)
        if where is not None:
            path = os.path.join(where, self.file)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if nbytes:
                    os.posix_fallocate(fd, 0, nbytes)
            except OSError as exc:  # ENOSPC: the volume is full already -- what we want
                if exc.errno != 28:
                    raise
            finally:
                os.close(fd)
            return
        path = shlex.quote(str(PurePosixPath(target) / self.file))
        code, out = self.ctx.container(node).exec_run(
            ["sh", "-c", f"fallocate -l {nbytes} {path} 2>/dev/null || "
                         f"dd if=/dev/zero of={path} bs=1M count={nbytes // 2**20} 2>/dev/null; "
                         f"test -e {path}"])
        if code != 0:
            raise UnsupportedFault(f"cannot write the balloon in {node}: {out!r}")

    def heal(self) -> None:
        for node in self.targets:
            target = DATA_TARGETS.get(node.split("-")[0], "/data")
            where = self._where.get(node)
            if where is None or not os.path.isdir(where):
                where = self._host_path(node, target)
            if where is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(where, self.file))
            else:
                c = self.ctx.container(node)
                c.reload()
                if c.status == "running":
                    c.exec_run(["rm", "-f", str(PurePosixPath(target) / self.file)])
            self.ctx.exec(node, ledger_remove_script(self.ctx.tag, self._marker(target)),
                          "ledger", missing_ok=True)
            self._filled.pop(node, None)

    def verify(self, budget: float) -> Verification | None:
        result: Verification | None = None
        for node in self._filled:
            result = judge_free(self._free(node), self.free, node)
            if not result.ok:
                return result
        return result

    def describe(self) -> dict[str, object]:
        return {"balloon": self.file, "bytes": dict(self._filled), "free": self.free,
                "volume_size": dict(self._size),
                "via": {n: ("host" if n in self._where else "exec") for n in self._filled}}


def reap_balloon(container: Any, file: str) -> str:
    """For the reaper: remove a dead run's balloon ``file`` from the container's data
    volume (through /proc/<pid>/root as root, else ``docker exec rm``). Returns what it did."""
    component = str(((container.attrs.get("Config") or {}).get("Labels") or {}).get(
        "org.pytest-tidb-ha.component", ""))
    target = DATA_TARGETS.get(component, "/data")
    if "/" in file or not file.startswith(".tidb-ha-balloon-"):
        return f"not a balloon: {file!r}"
    pid = container_pid(container)
    if os.geteuid() == 0 and pid > 0:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/proc/{pid}/root{target}/{file}")
        return f"removed {target}/{file}"
    container.exec_run(["rm", "-f", f"{target}/{file}"])
    return f"removed {target}/{file} (exec)"
