"""Group commit of journal writes for the PostgreSQL adapter.

``put_entry`` must enqueue at call time and resolve once its entry committed, so that the order
of a run's durable calls is the order of its commits. One writer task drains a queue: every
entry queued while the previous batch was in flight goes into the next batch, written by one
``unnest(...)`` statement (one transaction, one commit for many runs). The statement returns
the (run_id, seq) it wrote; an entry missing from that answer was fenced off and its future gets
``LeaseLost``. Batches run one after another, so entries of one run commit in call order; an
entry whose (run_id, seq) is already in the batch being built goes to the next batch with the
rest of its run's entries (one INSERT ... ON CONFLICT cannot touch a row twice, and a step
rewriting its entry must not be reordered).

A lone write (nothing queued, nothing being committed: one run stepping on an idle worker)
skips the writer task: :meth:`JournalWriter.write_now` commits it in the caller's task with the
single-row statement, saving the hand-over to the writer task and back (two turns of the event
loop) and the arrays. Writes submitted meanwhile queue up, and the writer task starts their
batch only after the lone write is done, so a run's entries still commit in call order. A batch
that holds a single entry uses the single-row statement too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from perdure.errors import LeaseLost, StorageUnavailable

__all__ = ["Entry", "JournalWriter"]

log = logging.getLogger("perdure.storage")

#: (run_id, epoch, worker, seq, kind, name, status, attempts, output, error, due_at,
#:  started_at, finished_at), the column order of the put_entries statement
Entry = tuple[str, int, str, int, str, str, str, int, str | None, str | None, float | None,
              float | None, float | None]
Write = Callable[[Sequence[Entry]], Awaitable[set[tuple[str, int]]]]
#: writes one entry; False when it was fenced off
WriteOne = Callable[[Entry], Awaitable[bool]]


class JournalWriter:
    """A queue of fenced journal writes and the one task that commits them in batches."""

    def __init__(self, write: Write, write_one: WriteOne, *, max_batch: int = 500) -> None:
        self._write = write
        self._write_one = write_one
        self._max_batch = max_batch
        self._queue: deque[tuple[Entry, asyncio.Future[None]]] = deque()
        self._ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # a batch or a lone write is being committed
        self.batches = 0  # statistics, for tests and benchmarks
        self.entries = 0
        self.lone = 0  # of those batches, lone writes committed in the caller's task

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="perdure-pg-journal-writer")

    def submit(self, entry: Entry) -> asyncio.Future[None]:
        """Queue ``entry`` now; the future resolves when it committed (or was fenced off)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closing or self._task is None:
            fut.set_exception(StorageUnavailable("the storage is closed"))
            return fut
        self._queue.append((entry, fut))
        self._ready.set()
        return fut

    async def write_now(self, entry: Entry) -> None:
        """Commit ``entry`` and return once it committed (``LeaseLost`` if it was fenced
        off): in the caller's task when nothing else is queued or being committed, else
        queued like :meth:`submit`. (Cancelled mid-statement, the entry may or may not have
        committed, as for any write whose caller did not wait for it.)"""
        if self._busy or self._queue or self._closing or self._task is None:
            await self.submit(entry)
            return
        self._busy = True
        try:
            written = await self._write_one(entry)
        finally:
            self._busy = False
            self._ready.set()  # the writer task waits for us before starting a batch
        self.batches += 1
        self.entries += 1
        self.lone += 1
        if not written:
            raise _lost(entry)

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._ready.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                # A lone write in flight (write_now) sets _ready when it is done.
                while self._queue and not self._busy:
                    self._busy = True
                    try:
                        await self._commit(self._take_batch())
                    finally:
                        self._busy = False
                if self._closing and not self._busy and not self._queue:
                    return
        finally:
            # Cancelled (the loop is going away): nobody will write what is left.
            while self._queue:
                _, fut = self._queue.popleft()
                if not fut.done():
                    fut.set_exception(StorageUnavailable("the storage was closed before the write"))

    def _take_batch(self) -> list[tuple[Entry, asyncio.Future[None]]]:
        """The next batch: queued entries in order, except that an entry whose (run_id, seq)
        is already in the batch waits for the next one, and so does every later entry of
        that run (a run's entries commit in call order; other runs are independent)."""
        batch: list[tuple[Entry, asyncio.Future[None]]] = []
        later: deque[tuple[Entry, asyncio.Future[None]]] = deque()
        keys: set[tuple[str, int]] = set()
        deferred: set[str] = set()  # runs with an entry left for a later batch
        while self._queue and len(batch) < self._max_batch:
            item = self._queue.popleft()
            run_id, seq = item[0][0], item[0][3]
            if run_id in deferred or (run_id, seq) in keys:
                deferred.add(run_id)
                later.append(item)
            else:
                keys.add((run_id, seq))
                batch.append(item)
        later.extend(self._queue)
        self._queue = later
        return batch

    async def _commit(self, batch: list[tuple[Entry, asyncio.Future[None]]]) -> None:
        try:
            if len(batch) == 1:
                entry = batch[0][0]
                written = {(entry[0], entry[3])} if await self._write_one(entry) else set()
            else:
                written = await self._write([entry for entry, _ in batch])
        except asyncio.CancelledError:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(StorageUnavailable("the storage was closed before the write"))
            raise
        except Exception as exc:
            # The database is unreachable (after the adapter's reconnect and retry): every
            # write of the batch failed; their runs stop and their leases lapse.
            log.warning("journal batch of %d entries failed: %s", len(batch), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.batches += 1
        self.entries += len(batch)
        for entry, fut in batch:
            if fut.done():  # its awaiter was cancelled
                continue
            if (entry[0], entry[3]) in written:
                fut.set_result(None)
            else:
                fut.set_exception(_lost(entry))


def _lost(entry: Entry) -> LeaseLost:
    return LeaseLost(f"run {entry[0]!r} is no longer owned at epoch {entry[1]}")


def columns(batch: Sequence[Entry]) -> list[list[Any]]:
    """The batch as 13 column arrays, the parameters of put_entries."""
    return [list(col) for col in zip(*batch, strict=True)]
