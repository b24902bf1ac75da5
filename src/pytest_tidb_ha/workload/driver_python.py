"""The Python workload driver: every connection in one thread, on non-blocking sockets.

Why one thread: Python threads share one core anyway (the GIL), and with one
thread per connection most of the client's CPU went to waking threads and
passing the GIL around (``bench/workload.py`` measured the kernel time per
transaction at 3x sysbench's). Here each worker is a generator that runs a
connection — connect, log in, transactions, errors, back-off — and yields
whenever it waits for its socket; one ``epoll`` loop resumes whichever socket
is ready. The protocol is :mod:`.wire` (rows are counted, never decoded).

What the workers do is what the threaded driver did:

* every error is counted per MySQL code through the :class:`~.driver.Reporter`
  (its ``ignore_errors`` policy decides whether the worker goes on);
* an ignored server error rolls the transaction back; a lost connection, a
  read timeout (``Target.read_timeout``) or a server-side connection error
  drops the connection, and the worker reconnects after a back-off (50 ms
  doubling to 1 s); new connections go round-robin over the TiDBs and fail
  over to the next one that answers;
* :meth:`PythonDriver.stop` returns at once: nothing blocks in a read, the
  loop closes every socket (the server rolls back what was open).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import random
import select
import socket
import threading
import time
from collections.abc import Generator
from typing import Any

from . import statements as sql
from . import wire
from .driver import Reporter
from .errors import CONNECTION_ERRORS
from .metrics import Aggregator, Totals
from .target import Target

log = logging.getLogger("pytest_tidb_ha.workload")

#: Back-off after a connection error: doubles from the first to the last value.
RECONNECT_BACKOFF = (0.05, 1.0)
#: How often the loop checks timeouts and back-offs (seconds).
TICK = 0.02
RECV_SIZE = 65536  # below glibc's mmap threshold: no mmap/munmap per read
CR_CONNECTION_ERROR = 2003

BEGIN, COMMIT, ROLLBACK = (wire.query(s) for s in (b"BEGIN", b"COMMIT", b"ROLLBACK"))

_IN, _OUT = select.EPOLLIN, select.EPOLLOUT

Wait = Generator[None, None, Any]


class _Lost(OSError):
    """The server closed the connection."""


class _Slot:
    """One worker as the loop sees it: its generator, socket and next deadline."""

    __slots__ = ("deadline", "done", "gen", "index", "sleeping", "sock")

    def __init__(self, index: int) -> None:
        self.index = index
        self.gen: Wait | None = None
        self.sock: socket.socket | None = None
        self.deadline = 0.0  # monotonic; 0: none
        self.sleeping = False
        self.done = False


class PythonDriver:
    """``threads`` workers of ``sysbench``-shaped transactions, in one loop thread."""

    label = "python"
    restarts = 0  # it reconnects by itself

    def __init__(self, target: Target, db: str, mix: sql.Mix, tables: int, table_size: int,
                 threads: int, seed: int, agg: Aggregator, reporter: Reporter,
                 stop: threading.Event) -> None:
        self.target = target
        self.db = db
        self.mix = mix
        self.tables = tables
        self.table_size = table_size
        self.threads = threads
        self.seed = seed
        self.agg = agg
        self.reporter = reporter
        self._stop = stop
        self._rr = itertools.count()
        self._addrs: dict[tuple[str, int], tuple[Any, ...]] = {}  # resolved once: no DNS per connect
        self._thread: threading.Thread | None = None
        self._ep: Any = None
        self._by_fd: dict[int, _Slot] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- the Driver seam ---------------------------------------------------------
    def start(self) -> None:
        self._ep = select.epoll()
        self._ep.register(self._wake_r.fileno(), _IN)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                         name="tidb-ha-workload")
        self._thread.start()

    def stop(self, timeout: float) -> list[str]:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # a blocking DNS lookup, say: leave it (daemon)
                return [self._thread.name]
        self._close_wakeup()
        return []

    def totals(self, now: float) -> Totals:
        return self.agg.totals(now)

    # -- the loop ------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (already woken) or closed
            self._wake_w.send(b"x")

    def _close_wakeup(self) -> None:
        for s in (self._wake_r, self._wake_w):
            s.close()

    def _run(self) -> None:
        slots = [_Slot(i) for i in range(self.threads)]
        try:
            for s in slots:
                s.gen = self._worker(s)
                self._resume(s, None)
            self._loop(slots)
        except BaseException as exc:  # noqa: BLE001 - a bug in the loop itself: never silent
            self.reporter.on_fatal(None, f"workload loop crashed: {type(exc).__name__}: {exc}")
        finally:
            for s in slots:
                if s.gen is not None:
                    s.gen.close()  # GeneratorExit: the worker accounts and closes its socket
            if self._ep is not None:
                self._ep.close()

    def _loop(self, slots: list[_Slot]) -> None:
        poll, by_fd, stop, resume = self._ep.poll, self._by_fd, self._stop, self._resume
        wake_fd = self._wake_r.fileno()
        monotonic = time.monotonic
        next_tick = monotonic() + TICK
        while not stop.is_set():
            for fd, _ in poll(TICK):
                slot = by_fd.get(fd)
                if slot is not None:
                    try:  # resume(slot, None), inlined: this is every statement's path
                        slot.gen.send(None)  # type: ignore[union-attr]
                    except StopIteration:
                        slot.done = True
                    except Exception as exc:  # noqa: BLE001 - any worker bug stops the run, loudly
                        self._crashed(slot, exc)
                elif fd == wake_fd:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
            now = monotonic()
            if now >= next_tick:
                next_tick = now + TICK
                for slot in slots:
                    if slot.deadline and now >= slot.deadline and not slot.done:
                        slot.deadline = 0.0
                        if slot.sleeping:
                            resume(slot, None)
                        else:
                            resume(slot, TimeoutError(errno.ETIMEDOUT, "timed out waiting "
                                                      "for the server"))
                if all(s.done for s in slots):
                    return

    def _resume(self, slot: _Slot, exc: BaseException | None) -> None:
        gen = slot.gen
        if gen is None or slot.done:
            return
        try:
            if exc is None:
                gen.send(None)
            else:
                gen.throw(exc)
        except StopIteration:
            slot.done = True
        except Exception as e:  # noqa: BLE001 - any worker bug stops the run, loudly
            self._crashed(slot, e)

    def _crashed(self, slot: _Slot, exc: Exception) -> None:
        """A bug in a worker: it stops the workload, never silently."""
        slot.done = True
        self.reporter.on_fatal(None, f"worker {slot.index} crashed: {type(exc).__name__}: {exc}")

    # -- socket registration (called from the workers) -------------------------------
    def _watch(self, slot: _Slot, sock: socket.socket, mask: int) -> None:
        slot.sock = sock
        self._by_fd[sock.fileno()] = slot
        self._ep.register(sock.fileno(), mask)

    def _drop(self, slot: _Slot) -> None:
        sock, slot.sock = slot.sock, None
        if sock is None:
            return
        fd = sock.fileno()
        if fd >= 0:
            self._by_fd.pop(fd, None)
            with contextlib.suppress(OSError, ValueError):
                self._ep.unregister(fd)
        sock.close()

    # -- one worker -------------------------------------------------------------------
    def _worker(self, slot: _Slot) -> Wait:
        rng = random.Random(self.seed + 7919 * (slot.index + 1))  # noqa: S311 - seeded workload data, not a secret
        backoff = RECONNECT_BACKOFF[0]
        try:
            while not self._stop.is_set():
                sock = yield from self._connect_any(slot)
                if sock is not None:
                    committed = yield from self._transactions(slot, sock, rng)
                    self._drop(slot)
                    if committed is None:  # stopped by an error outside ignore_errors
                        return
                    if committed:
                        backoff = RECONNECT_BACKOFF[0]
                # no TiDB answered, or the connection broke: back off, then reconnect
                if not (yield from self._sleep(slot, backoff)):
                    return
                backoff = min(backoff * 2, RECONNECT_BACKOFF[1])
        finally:
            slot.deadline = 0.0
            self._drop(slot)

    def _sleep(self, slot: _Slot, seconds: float) -> Generator[None, None, bool]:
        slot.sleeping = True
        slot.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            slot.sleeping = False
        return not self._stop.is_set()

    def _connect_any(self, slot: _Slot) -> Generator[None, None, socket.socket | None]:
        """A logged-in connection to the next TiDB, failing over to the others."""
        endpoints = self.target.endpoints
        failures: list[str] = []
        last: wire.ServerError | None = None
        for _ in range(len(endpoints)):
            host, port = endpoints[next(self._rr) % len(endpoints)]
            try:
                return (yield from self._connect(slot, host, port))
            except wire.ServerError as exc:
                if exc.code not in (CR_CONNECTION_ERROR, wire.CR_SERVER_LOST):
                    last = exc  # the server answered and refused: do not hide it
                    break
                failures.append(f"{host}:{port}: {exc.message}")
                last = exc
        assert last is not None
        message = last.message if len(failures) < 2 else "no TiDB answered: " + "; ".join(failures)
        self.reporter.on_error(last.code, message)  # outside ignore_errors: stops the run
        return None

    def _connect(self, slot: _Slot, host: str, port: int) -> Generator[None, None, socket.socket]:
        t = self.target
        try:
            if (host, port) not in self._addrs:
                self._addrs[host, port] = socket.getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)[0]
            family, kind, proto, _, addr = self._addrs[host, port]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise wire.ServerError(CR_CONNECTION_ERROR, f"{host}:{port}: {exc}") from exc
        slot.deadline = time.monotonic() + t.connect_timeout
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(addr)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            self._watch(slot, sock, _OUT)
            if err:
                yield
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
            self._ep.modify(sock.fileno(), _IN)
        except OSError as exc:
            if slot.sock is sock:
                self._drop(slot)
            else:
                sock.close()
            raise wire.ServerError(CR_CONNECTION_ERROR,
                                   f"can't connect to {host}:{port}: {exc}") from exc
        try:
            login = wire.Login(t.user, t.password, self.db)
            buf = b""
            while not login.done:
                yield
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise _Lost("server closed the connection during login")
                buf += data
                while not login.done and (p := wire.split(buf)) is not None:
                    seq, payload, buf = p
                    out = login.receive(seq, payload)
                    if out:
                        sock.send(out)  # a few dozen bytes into an empty buffer
        except OSError as exc:
            self._drop(slot)
            raise wire.ServerError(wire.CR_SERVER_LOST,
                                   f"lost connection to {host}:{port} during login: {exc}") from exc
        except BaseException:
            self._drop(slot)
            raise
        slot.deadline = 0.0
        return sock

    def _send(self, slot: _Slot, sock: socket.socket, packet: bytes) -> Wait:
        """Send all of ``packet``; waits for room only when the socket buffer is full."""
        try:
            sent = sock.send(packet)
        except BlockingIOError:
            sent = 0
        if sent == len(packet):
            return
        self._ep.modify(sock.fileno(), _OUT)
        try:
            while sent < len(packet):
                yield
                with contextlib.suppress(BlockingIOError):
                    sent += sock.send(packet[sent:])
        finally:
            self._ep.modify(sock.fileno(), _IN)

    def _transactions(self, slot: _Slot, sock: socket.socket,
                      rng: random.Random) -> Generator[None, None, bool | None]:
        """Transactions until the connection must go: whether any committed, or None
        when an error outside ``ignore_errors`` (or stop()) ends the run."""
        reporter, agg, now, mix = self.reporter, self.agg, self.reporter.now, self.mix
        tables, table_size, timeout = self.tables, self.table_size, self.target.read_timeout
        monotonic, perf = time.monotonic, time.perf_counter
        resp = wire.Response()
        recv, send = sock.recv, sock.send
        queries, transaction = wire.queries, sql.transaction
        committed = False
        done = 0
        try:
            while True:
                packets = [BEGIN, *queries(transaction(mix, tables, table_size, rng)), COMMIT]
                done = 0
                began = perf()
                for packet in packets:
                    try:
                        sent = send(packet)
                    except BlockingIOError:
                        sent = 0
                    if sent < len(packet):  # the socket buffer is full: wait for room
                        yield from self._send(slot, sock, packet[sent:])
                    resp.reset()
                    slot.deadline = monotonic() + timeout
                    while True:
                        yield
                        try:
                            data = recv(RECV_SIZE)
                        except BlockingIOError:  # woken without data
                            continue
                        if not data:
                            raise _Lost("server closed the connection")
                        result = resp.feed(data)
                        if result:
                            break
                    slot.deadline = 0.0
                    if result == wire.ERROR:
                        agg.add_queries(now(), done)
                        done = 0
                        err = resp.error
                        assert err is not None
                        if not reporter.on_error(err.code, err.message):
                            return None
                        if err.code in CONNECTION_ERRORS:
                            return committed
                        if not (yield from self._rollback(slot, sock, resp)):
                            return committed
                        break
                    done += 1
                else:
                    agg.add_transaction(now(), perf() - began, done)
                    committed = True
                    done = 0
        except GeneratorExit:  # stop(): what ran of this transaction still counts
            agg.add_queries(now(), done)
            raise
        except (OSError, wire.ProtocolError) as exc:
            agg.add_queries(now(), done)
            slot.deadline = 0.0
            if self._stop.is_set():
                return None  # our own shutdown, not the cluster's error
            code, message = ((exc.code, exc.message) if isinstance(exc, wire.ProtocolError)
                             else (wire.CR_SERVER_LOST, f"{type(exc).__name__}: {exc}"))
            return committed if reporter.on_error(code, message) else None

    def _rollback(self, slot: _Slot, sock: socket.socket, resp: wire.Response
                  ) -> Generator[None, None, bool]:
        """ROLLBACK after an ignored error; False when the connection is not usable."""
        yield from self._send(slot, sock, ROLLBACK)
        resp.reset()
        slot.deadline = time.monotonic() + self.target.read_timeout
        while True:
            yield
            try:
                data = sock.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            if not data:
                raise _Lost("server closed the connection")
            result = resp.feed(data)
            if result:
                slot.deadline = 0.0
                return result == wire.OK

