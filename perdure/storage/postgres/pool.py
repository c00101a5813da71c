"""Connections of the PostgreSQL adapter: a small FIFO pool that rides out a server restart.

Why not ``asyncpg.Pool``: its default reset (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
RESET ALL``) costs a round trip on every release and halves throughput (bench/pg_drivers.md).
Pooled connections here never carry session state — no ``SET``, no ``LISTEN``, no session
advisory lock (those live on the one session connection, see postgres_session.py) and every
transaction is closed by its ``async with`` — so nothing needs resetting.

A connection that died (the server restarted, the network dropped) is noticed either before
use (asyncpg marks it closed when the socket closes) or by the operation that fails on it; it
is dropped and the next acquire opens a new one, retrying until ``reconnect_timeout``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from perdure.errors import StorageUnavailable

__all__ = ["RECONNECT_PAUSE_MAX", "Connection", "Pool", "Reconnecting", "StorageUnavailable",
           "is_connection_error", "is_transient"]

log = logging.getLogger("perdure.storage")

#: The longest pause between two attempts to reach a server that is away. A server that comes
#: back is used again within this, so runs waiting through a restart resume within a second
#: (tests/pg/test_push.py); an attempt costs the server a refused TCP connection.
RECONNECT_PAUSE_MAX = 0.2
_WARN_EVERY = 5.0  # while the server stays away, one warning per this many seconds


class Reconnecting:
    """The pauses between attempts to reach the server (doubling from ``first`` up to
    :data:`RECONNECT_PAUSE_MAX`) and the log level of each failure: a warning for the first
    and then one every few seconds, the rest at DEBUG (the pauses are short)."""

    def __init__(self, first: float = 0.02) -> None:
        self._first = first
        self.delay = first
        self._warned = -math.inf

    def failed(self) -> int:
        """Note a failed attempt; the log level to report it at."""
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            return logging.WARNING
        return logging.DEBUG

    def advance(self) -> None:
        self.delay = min(self.delay * 2, RECONNECT_PAUSE_MAX)

    def reset(self) -> None:
        self.delay, self._warned = self._first, -math.inf

#: asyncpg is untyped; a connection is an ``asyncpg.Connection``.
Connection = Any


def is_connection_error(exc: BaseException, conn: Connection | None = None) -> bool:
    """Whether ``exc`` means the connection (not the statement) failed."""
    if isinstance(exc, asyncpg.QueryCanceledError):  # statement timeout or cancel: conn is fine
        return False
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.OperatorInterventionError
                  | ConnectionError | OSError | TimeoutError):
        return True
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state N; another operation is in progress": the server ended
        # the session (an admin shutdown notice) while the connection sat idle, and asyncpg
        # has not noticed the socket closing yet. Raised before anything is sent.
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        # "connection is closed", "cannot perform operation: connection is closed", ...
        return conn is None or conn.is_closed() or "closed" in str(exc)
    return False


def is_transient(exc: BaseException) -> bool:
    """Connecting failed in a way that waiting may cure (server restarting or unreachable),
    as opposed to bad credentials or a missing database."""
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError
                  | asyncpg.InvalidPasswordError | asyncpg.InvalidCatalogNameError):
        return False
    return is_connection_error(exc) or isinstance(exc, asyncpg.CannotConnectNowError)


class Pool:
    """Up to ``size`` connections, handed out first-come first-served, opened on demand."""

    def __init__(self, connect: Callable[[], Awaitable[Connection]], *, size: int,
                 reconnect_timeout: float, describe: str) -> None:
        self._connect = connect
        self._size = size
        self._reconnect_timeout = reconnect_timeout
        self._describe = describe  # the redacted URL, for error messages
        self._idle: collections.deque[Connection] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._open = 0  # connections that exist or are being opened
        self._closed = False
        #: server process ids of our connections: NOTIFYs they send are our own
        self.server_pids: set[int] = set()
        self._pid_of: dict[int, int] = {}  # id(conn) -> its server pid

    def adopt(self, conn: Connection) -> None:
        """Add an already-open connection (the one ``open()`` migrated with)."""
        self._open += 1
        self._track(conn)
        self._idle.append(conn)

    async def acquire(self) -> Connection:
        """A live connection; waits for the server for up to ``reconnect_timeout``."""
        while True:
            if self._closed:
                raise StorageUnavailable("the storage is closed")
            while self._idle:
                conn = self._idle.popleft()
                if not conn.is_closed():
                    return conn
                self._forget(conn)
            if self._open < self._size:
                self._open += 1
                try:
                    conn = await self._connect_patiently()
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
                self._track(conn)
                return conn
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake_one()  # pass on the turn we were given
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, conn: Connection, *, discard: bool = False) -> None:
        """Give a connection back; ``discard`` (or a broken connection) closes it instead."""
        if discard or self._closed or conn.is_closed() or conn.is_in_transaction():
            if not conn.is_closed():
                conn.terminate()
            self._forget(conn)
        else:
            self._idle.append(conn)
        self._wake_one()

    def discard_idle(self) -> None:
        """Close every idle connection: one broke, so the server probably restarted and they
        are all dead (asyncpg does not always notice before the next use)."""
        idle, self._idle = list(self._idle), collections.deque()
        for conn in idle:
            if not conn.is_closed():
                conn.terminate()
            self._forget(conn)
        for _ in idle:
            self._wake_one()

    def _track(self, conn: Connection) -> None:
        pid = conn.get_server_pid()
        self._pid_of[id(conn)] = pid
        self.server_pids.add(pid)

    def _forget(self, conn: Connection) -> None:
        self._open -= 1
        pid = self._pid_of.pop(id(conn), None)
        if pid is not None:
            self.server_pids.discard(pid)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect_patiently(self) -> Connection:
        deadline = time.monotonic() + self._reconnect_timeout
        pauses = Reconnecting()
        while True:
            try:
                return await self._connect()
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() + pauses.delay > deadline:
                    raise StorageUnavailable(
                        f"cannot connect to PostgreSQL at {self._describe}: "
                        f"{type(exc).__name__}: {exc}") from exc
                log.log(pauses.failed(), "PostgreSQL at %s unreachable (%s); retrying every "
                        "%.2f s", self._describe, type(exc).__name__, RECONNECT_PAUSE_MAX)
                await asyncio.sleep(pauses.delay)
                pauses.advance()

    async def close(self) -> None:
        """Close the idle connections; connections in use are closed when released."""
        self._closed = True
        idle, self._idle = list(self._idle), collections.deque()
        for conn in idle:
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except Exception:  # already broken, or the server is gone: just drop it
                conn.terminate()
            self._forget(conn)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # they will see _closed and raise
