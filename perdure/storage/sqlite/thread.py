"""A thread that owns one SQLite connection and group-commits the writes queued to it.

Why a thread: a durable SQLite commit waits for fsync, which must not stall the event loop.
Why one thread and one connection: SQLite allows one writer at a time anyway, ``:memory:``
databases live in a single connection, and a single queue gives group commit for free — every
write queued while a commit is in flight goes into the next transaction together, so 200
concurrent runs pay for a handful of fsyncs, not 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from perdure.errors import StorageUnavailable

__all__ = ["DbThread"]

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
_Item = tuple[Op, bool, "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_STOP = object()


class DbThread:
    """Runs callables against one connection; consecutive writes share one transaction."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, busy_ms: int,
                 translate: Callable[[BaseException], BaseException]) -> None:
        self._connect = connect
        self._busy_ms = busy_ms
        #: the adapter's mapping of driver errors to typed ones, applied to every failed
        #: operation before its caller sees it
        self._translate = translate
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="perdure-sqlite", daemon=True)
        self._conn: sqlite3.Connection | None = None
        # Operations queued or running in the thread; the connection itself is used by one
        # thread at a time (the DB thread, or the caller's for an inline operation).
        self._inflight = 0
        self._state = threading.Lock()
        self._using = threading.Lock()

    def start(self) -> None:
        """Open the connection in the thread; raise what opening raised."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Finish queued work, close the connection, end the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def submit(self, op: Op, *, write: bool, inline: bool = False) -> asyncio.Future[Any]:
        """Queue ``op``; the returned future resolves on the caller's loop once it ran (and,
        for a write, once its transaction committed).

        With ``inline`` and nothing queued, the operation runs right here on the caller's
        thread instead: no hand-off to the DB thread and back (about 70 µs), at the price of
        blocking the caller for the commit. Callers ask for it only when nothing else would
        have shared the commit (one run in flight), so group commit is not given up.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._thread.is_alive() or self._conn is None:
            fut.set_exception(_closed())
            return fut
        item: _Item = (op, write, fut, loop)
        with self._state:
            idle = inline and self._inflight == 0
            self._inflight += 1
        if not idle:
            self._queue.put(item)
            return fut
        try:
            with self._using:
                conn = self._conn
                outcomes = ([(False, _closed())] if conn is None
                            else self._execute_now(conn, item))
        finally:
            with self._state:
                self._inflight -= 1
        ok, value = outcomes[0]
        if not ok and _is_busy(value):
            # Another process holds the write lock: wait for it in the DB thread, not here on
            # the caller's event loop (nothing of this operation was applied).
            with self._state:
                self._inflight += 1
            self._queue.put(item)
            return fut
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(self._translate(value))
        return fut

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._ready.set()
            return
        self._conn = conn
        self._ready.set()
        try:
            stop = False
            while not stop:
                batch: list[_Item] = []
                item = self._queue.get()
                while True:
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)  # type: ignore[arg-type]
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    with self._using:
                        outcomes = self._execute(conn, batch)
                    with self._state:
                        self._inflight -= len(batch)
                    _deliver([(fut, loop, ok, value if ok else self._translate(value))
                              for (_, _, fut, loop), (ok, value)
                              in zip(batch, outcomes, strict=True)])
        finally:
            with self._using:
                self._conn = None
                conn.close()

    def _execute_now(self, conn: sqlite3.Connection, item: _Item) -> list[tuple[bool, Any]]:
        """Run one operation on the caller's thread without waiting for another process's
        lock (busy timeout 0 for the duration): a busy database sends it to the thread."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            return self._execute(conn, [item])
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    @staticmethod
    def _execute(conn: sqlite3.Connection, batch: list[_Item]) -> list[tuple[bool, Any]]:
        """Run a batch: every write in one transaction; (ok, result or exception) each."""
        outcomes: list[tuple[bool, Any]] = []
        in_txn = False
        try:
            writes = sum(1 for _, write, _, _ in batch if write)
            if writes:
                conn.execute("BEGIN IMMEDIATE")
                in_txn = True
            for op, write, _, _ in batch:
                try:
                    if write and writes > 1:
                        # A savepoint per operation: one failing write (a constraint, a fenced
                        # multi-statement op) rolls back alone, the rest of the batch commits.
                        # (A lone write skips it: two statements saved on the hot path.)
                        conn.execute("SAVEPOINT op")
                        try:
                            result = op(conn)
                        except BaseException:
                            if conn.in_transaction:
                                conn.execute("ROLLBACK TO op")
                                conn.execute("RELEASE op")
                            raise
                        conn.execute("RELEASE op")
                    else:
                        result = op(conn)
                    outcomes.append((True, result))
                except Exception as exc:
                    if in_txn and not conn.in_transaction:
                        # SQLite rolled the whole transaction back (a full disk, an I/O
                        # error): the writes that succeeded before are gone as well.
                        raise _Aborted(exc) from exc
                    outcomes.append((False, exc))
            if in_txn:
                # A lone write needs no savepoint: if it failed, the whole transaction (its
                # own) is rolled back instead of committed.
                lone_failed = writes == 1 and not next(
                    ok for (_, write, _, _), (ok, _) in zip(batch, outcomes, strict=True)
                    if write)
                conn.execute("ROLLBACK" if lone_failed else "COMMIT")
        except Exception as exc:  # BEGIN or COMMIT failed: no write of this batch happened
            cause = exc.cause if isinstance(exc, _Aborted) else exc
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # a failing rollback changes nothing
                    conn.execute("ROLLBACK")
            outcomes += [(False, cause)] * (len(batch) - len(outcomes))
            outcomes = [(False, cause) if item[1] else outcome
                        for item, outcome in zip(batch, outcomes, strict=True)]
        return outcomes


class _Aborted(Exception):
    """The batch's transaction is gone (SQLite rolled it back after ``cause``)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _deliver(outcomes: list[tuple[asyncio.Future[Any], asyncio.AbstractEventLoop, bool, Any]]
             ) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for fut, loop, ok, value in outcomes:
        by_loop.setdefault(loop, []).append((fut, ok, value))
    for loop, items in by_loop.items():
        # One wake-up of the loop per batch, not one per future; a closed loop has no waiter.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in items:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _closed() -> StorageUnavailable:
    return StorageUnavailable("the storage is closed")


def _is_busy(exc: object) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc))
