"""The real etcd behind the PD role: start, supervise, restart, stop.

PD embeds etcd; the stand-in runs Debian's `etcd` binary as a child instead, with the PD
member name, peers on the PD peer URLs and the client side on 127.0.0.1:12379 only (the PD
HTTP server on :2379 is the only way in, as with real PD).  Raft timings follow PD's
`tick-interval`/`election-interval` (500ms/3s) times the time scale, with floors so a
loaded 2-core machine does not flap leaders.  If etcd dies, the supervisor restarts it
with the same data dir, which is how a real PD process would come back.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from common.env import scaled
from common.log import get_logger, raw_line

log = get_logger("pd.etcd")

ETCD_CLIENT_URL = "http://127.0.0.1:12379"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class EtcdSettings:
    name: str
    data_dir: str
    listen_peer_urls: tuple[str, ...]
    advertise_peer_urls: tuple[str, ...]
    initial_cluster: str
    heartbeat_ms: int
    election_ms: int
    force_new_cluster: bool = False
    initial_cluster_state: str = "new"  # "existing" for a member that joined with --join
    binary: str = "etcd"

    def argv(self, existing_data: bool) -> list[str]:
        args = [
            self.binary,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={ETCD_CLIENT_URL}",
            f"--advertise-client-urls={ETCD_CLIENT_URL}",
            f"--listen-peer-urls={','.join(self.listen_peer_urls)}",
            f"--initial-advertise-peer-urls={','.join(self.advertise_peer_urls)}",
            f"--heartbeat-interval={self.heartbeat_ms}",
            f"--election-timeout={self.election_ms}",
            "--enable-v2=false",
            "--pre-vote=true",
            "--logger=zap",
            "--log-outputs=stderr",
            "--auto-compaction-mode=periodic",
            "--auto-compaction-retention=1h",
            "--quota-backend-bytes=8589934592",
        ]
        if not existing_data:
            args += [
                f"--initial-cluster={self.initial_cluster}",
                f"--initial-cluster-state={self.initial_cluster_state}",
                "--initial-cluster-token=pd-cluster",
            ]
        if self.force_new_cluster:
            args.append("--force-new-cluster")
        return args


def raft_timings(tick_interval: float, election_interval: float) -> tuple[int, int]:
    """PD's raft tick/election intervals scaled, floored at 100ms/1s, election >= 5 ticks."""
    heartbeat = max(0.1, scaled(tick_interval, 0.1))
    election = max(1.0, scaled(election_interval, 1.0), heartbeat * 5)
    return int(heartbeat * 1000), int(election * 1000)


def _set_pdeathsig() -> None:
    # The etcd child dies with the PD role (os.setsid keeps it out of our signal group).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class EtcdProcess:
    """Runs etcd and restarts it when it exits unexpectedly (until `stop()`)."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.restarts = 0
        self.started_at = 0.0

    def start(self) -> None:
        self._spawn()
        threading.Thread(target=self._supervise, name="etcd-supervisor", daemon=True).start()

    def _spawn(self) -> None:
        member_dir = os.path.join(self.settings.data_dir, "member")
        existing = os.path.isdir(member_dir)
        os.makedirs(self.settings.data_dir, exist_ok=True)
        argv = self.settings.argv(existing)
        log.info("starting etcd", args=" ".join(argv[1:]), existing_data=existing)
        with self._lock:
            self._proc = subprocess.Popen(  # noqa: S603 - our own etcd argv, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_set_pdeathsig,
            )
            self.started_at = time.time()
        threading.Thread(target=self._pump, args=(self._proc,), name="etcd-log", daemon=True).start()

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdout is None:  # started with stdout=PIPE: never
            return
        for line in proc.stdout:
            raw_line("etcd: " + line.decode(errors="replace"))

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.error("etcd exited, restarting", exit_code=code, restarts=self.restarts)
            time.sleep(min(1.0 * self.restarts, 5.0))
            while not self._stopping.is_set():
                try:
                    self._spawn()
                    break
                except OSError as exc:
                    log.error("cannot start etcd, retrying", error=str(exc))
                    time.sleep(1.0)

    def running(self) -> bool:
        with self._lock:
            return self._proc is not None and self._proc.poll() is None

    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc else None

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
