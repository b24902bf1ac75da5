"""A private MariaDB server on loopback, for tests and the workload bench.

Why MariaDB: it is a real MySQL-protocol server from Debian, so running the
workload against it proves the SQL we send is valid MySQL (the stand-in TiDB
only proves we keep to our own contract). The server gets its own datadir and
port under a temporary folder and is always stopped; nothing touches a system
MariaDB.

``mariadb-server`` is installed with apt when missing — only as root; anyone
else gets a skip that says what to install.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

log = logging.getLogger("pytest_tidb_ha.tests.mariadb")

INSTALL_TIMEOUT = 600.0
START_TIMEOUT = 60.0


class Unavailable(Exception):
    """MariaDB cannot be provided here (the caller turns this into a skip)."""


@dataclass(frozen=True)
class MariaDB:
    host: str
    port: int
    socket_path: Path
    datadir: Path
    pid: int
    user: str = "root"

    def connect(self, database: str | None = None, *, connect_timeout: float = 5,
                read_timeout: float = 30, write_timeout: float = 30) -> pymysql.Connection:
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password="",
                               database=database, connect_timeout=connect_timeout,
                               read_timeout=read_timeout, write_timeout=write_timeout,
                               autocommit=True)


def _binary(*names: str) -> str | None:
    for name in names:
        for d in (None, "/usr/sbin", "/usr/bin"):
            path = shutil.which(name, path=d)
            if path:
                return path
    return None


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


@contextlib.contextmanager
def _no_service_start() -> Iterator[None]:
    """Keep the package's post-install from starting a system MariaDB on port 3306.

    Debian asks ``policy-rc.d`` whether a package may start its service; exit
    code 101 means no. An existing policy is left alone; ours is removed after.
    """
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# pytest-tidb-ha: no services during apt-get\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def ensure_installed() -> tuple[str, str]:
    """Paths of ``mariadbd`` and ``mariadb-install-db``; apt-installs when root."""
    server, installer = _binary("mariadbd", "mysqld"), _binary("mariadb-install-db",
                                                               "mysql_install_db")
    if server and installer:
        return server, installer
    if os.geteuid() != 0:
        raise Unavailable("mariadb-server is not installed and we are not root: "
                          "run `apt-get install mariadb-server` to enable these tests")
    if shutil.which("apt-get") is None:
        raise Unavailable("mariadb-server is not installed and apt-get is not available")
    log.info("installing mariadb-server with apt-get (once per machine)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "mariadb-server"]
    with _no_service_start():
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT, check=False)
        if proc.returncode != 0:  # the package lists may be missing on a fresh machine
            subprocess.run(["apt-get", "update"], env=env, capture_output=True,
                           timeout=INSTALL_TIMEOUT, check=False)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise Unavailable(f"apt-get install mariadb-server failed ({proc.returncode}): "
                          f"{proc.stderr.strip()[-800:]}")
    server, installer = _binary("mariadbd", "mysqld"), _binary("mariadb-install-db",
                                                               "mysql_install_db")
    if not (server and installer):
        raise Unavailable("mariadb-server installed but mariadbd/mariadb-install-db not found")
    return server, installer


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no error log)"


@contextlib.contextmanager
def mariadb_server(base: Path | None = None) -> Iterator[MariaDB]:
    """Start ``mariadbd`` on 127.0.0.1 with a private datadir; stop it on exit."""
    server, installer = ensure_installed()
    tmp = Path(tempfile.mkdtemp(prefix="tidb-ha-mariadb-", dir=base))
    datadir, errlog, sock = tmp / "data", tmp / "error.log", tmp / "mysqld.sock"
    user = ["--user=root"] if os.geteuid() == 0 else []
    proc: subprocess.Popen[bytes] | None = None
    try:
        init = subprocess.run(
            [installer, "--no-defaults", f"--datadir={datadir}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *user],
            capture_output=True, text=True, timeout=120, check=False)
        if init.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed ({init.returncode}): "
                               f"{init.stderr.strip()[-800:]}")
        port = _free_port()
        proc = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={datadir}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--log-error={errlog}",
             f"--pid-file={tmp / 'mysqld.pid'}", "--skip-grant-tables", "--skip-name-resolve",
             "--skip-log-bin", "--max-connections=500", "--innodb-buffer-pool-size=256M",
             "--innodb-flush-log-at-trx-commit=2", "--innodb-log-file-size=128M", *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        db = MariaDB("127.0.0.1", port, sock, datadir, proc.pid)
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {proc.returncode}:\n{_tail(errlog)}")
            try:
                db.connect(connect_timeout=1, read_timeout=5).close()
                break
            except pymysql.err.MySQLError as exc:
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"mariadbd on 127.0.0.1:{port} did not answer within "
                                   f"{START_TIMEOUT:.0f}s (last error: {last}):\n"
                                   f"{_tail(errlog)}")
            time.sleep(0.2)
        log.info("mariadbd %d ready on 127.0.0.1:%d (datadir %s)", proc.pid, port, datadir)
        yield db
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
