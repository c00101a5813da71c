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

__all__ = ["DbThread"]

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
_Item = tuple[Op, bool, "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_STOP = object()


class DbThread:
    """Runs callables against one connection; consecutive writes share one transaction."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="perdure-sqlite", daemon=True)

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

    def submit(self, op: Op, *, write: bool) -> asyncio.Future[Any]:
        """Queue ``op``; the returned future resolves on the caller's loop once it ran (and,
        for a write, once its transaction committed)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._thread.is_alive():
            fut.set_exception(RuntimeError("the storage is closed"))
            return fut
        self._queue.put((op, write, fut, loop))
        return fut

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._ready.set()
            return
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
                    self._run(conn, batch)
        finally:
            conn.close()

    def _run(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
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
                            conn.execute("ROLLBACK TO op")
                            conn.execute("RELEASE op")
                            raise
                        conn.execute("RELEASE op")
                    else:
                        result = op(conn)
                    outcomes.append((True, result))
                except Exception as exc:
                    outcomes.append((False, exc))
            if in_txn:
                # A lone write needs no savepoint: if it failed, the whole transaction (its
                # own) is rolled back instead of committed.
                lone_failed = writes == 1 and not next(
                    ok for (_, write, _, _), (ok, _) in zip(batch, outcomes, strict=True)
                    if write)
                conn.execute("ROLLBACK" if lone_failed else "COMMIT")
        except Exception as exc:  # BEGIN or COMMIT failed: no write of this batch happened
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes += [(False, exc)] * (len(batch) - len(outcomes))
            outcomes = [(False, exc) if item[1] else outcome
                        for item, outcome in zip(batch, outcomes, strict=True)]
        _deliver([(fut, loop, ok, value)
                  for (_, _, fut, loop), (ok, value) in zip(batch, outcomes, strict=True)])


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
