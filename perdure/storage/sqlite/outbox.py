"""The SQLite adapter's outbox: SQL only, on the adapter's connection thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from perdure.errors import LeaseLost
from perdure.records import DeadLetter, JournalEntry, OutboxEvent, OutboxStats
from perdure.storage.outbox_port import NewEvent
from perdure.storage.params import entry_params, lost

__all__ = ["SqliteOutbox", "event_from_row"]

Submit = Callable[..., "asyncio.Future[Any]"]


class SqliteOutbox:
    """The outbox tables of one :class:`~perdure.storage.sqlite.SqliteStorage`.

    There is no push between processes on SQLite: a publisher in another process finds new
    events by polling. In this process, ``wake`` is called after each commit that adds some.
    """

    def __init__(self, queries: dict[str, str], submit: Submit) -> None:
        self._q = queries
        self._submit = submit  # (op, write=...) -> future, the adapter's
        self._wake: Callable[[], None] = lambda: None

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Called after this process put or replayed events."""
        self._wake = wake

    async def _run(self, op: Callable[[sqlite3.Connection], Any], *, write: bool) -> Any:
        return await self._submit(op, write=write)

    async def put_event(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                        event: NewEvent) -> None:
        """Journal the emit and insert its event in one transaction, fenced."""
        owned, put, insert = (self._q["outbox_owned"], self._q["outbox_put_entry"],
                              self._q["outbox_insert"])
        params = entry_params(run_id, epoch, worker, entry)
        row = {"id": event.id, "run_id": run_id, "seq": entry.seq, "event_name": event.name,
               "key": event.key, "payload": event.payload, "now": event.now}

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(owned, params).fetchone() is None:
                raise lost(run_id, epoch)
            if conn.execute(put, params).rowcount:
                conn.execute(insert, row)

        await self._run(op, write=True)
        self._wake()

    async def lead(self, worker: str, *, now: float, lease_until: float) -> int | None:
        """Take or renew the lease; the term, or None."""
        sql = self._q["outbox_lead"]
        params = {"worker": worker, "now": now, "lease_until": lease_until}

        def op(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(sql, params).fetchone()
            return None if row is None else int(row[0])

        result: int | None = await self._run(op, write=True)
        return result

    async def resign(self, worker: str, term: int) -> None:
        """Release the lease."""
        sql = self._q["outbox_resign"]
        await self._run(lambda conn: conn.execute(sql, {"worker": worker, "term": term}),
                        write=True)

    def _fenced(self, worker: str, term: int, statements: Sequence[tuple[str, dict[str, Any]]]
                ) -> Callable[[sqlite3.Connection], None]:
        fence = self._q["outbox_fence"]

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(fence, {"worker": worker, "term": term}).fetchone() is None:
                raise _deposed(term)
            for sql, params in statements:
                conn.execute(sql, params)

        return op

    async def due(self, *, now: float, limit: int) -> list[OutboxEvent]:
        """Due events, first of their key, in emit order."""
        sql = self._q["outbox_due"]
        rows = await self._run(lambda conn: conn.execute(sql, {"now": now, "limit": limit})
                               .fetchall(), write=False)
        return [event_from_row(r) for r in rows]

    async def next_due(self) -> float | None:
        """The earliest retry time among first-of-their-key events."""
        sql = self._q["outbox_next_due"]
        row = await self._run(lambda conn: conn.execute(sql).fetchone(), write=False)
        return None if row is None or row[0] is None else float(row[0])

    async def delivered(self, worker: str, term: int, ids: Sequence[str]) -> None:
        """Delete delivered events, fenced."""
        await self._run(self._fenced(worker, term, [
            (self._q["outbox_delete"], {"ids": json.dumps(list(ids))})]), write=True)

    async def retry(self, worker: str, term: int, event_id: str, *, attempts: int,
                    error: str, next_at: float) -> None:
        """Record a failed attempt, fenced."""
        await self._run(self._fenced(worker, term, [
            (self._q["outbox_retry"], {"id": event_id, "attempts": attempts, "error": error,
                                       "next_at": next_at})]), write=True)

    async def bury(self, worker: str, term: int, event_id: str, *, attempts: int, error: str,
                   now: float) -> None:
        """Move an event to the dead letters, fenced."""
        await self._run(self._fenced(worker, term, [
            (self._q["outbox_bury"], {"id": event_id, "attempts": attempts, "error": error,
                                      "now": now}),
            (self._q["outbox_delete"], {"ids": json.dumps([event_id])})]), write=True)

    async def pending(self, *, limit: int, key: str | None) -> list[OutboxEvent]:
        """Undelivered events in emit order."""
        sql = self._q["outbox_pending"]
        rows = await self._run(lambda conn: conn.execute(sql, {"limit": limit, "key": key})
                               .fetchall(), write=False)
        return [event_from_row(r) for r in rows]

    async def dead_letters(self, *, limit: int) -> list[DeadLetter]:
        """Dead letters in emit order."""
        sql = self._q["outbox_dead_list"]
        rows = await self._run(lambda conn: conn.execute(sql, {"limit": limit}).fetchall(),
                               write=False)
        return [dead_from_row(r) for r in rows]

    async def replay(self, ids: Sequence[str] | None, now: float) -> int:
        """Dead letters back into the outbox; how many."""
        replay, unbury = self._q["outbox_replay"], self._q["outbox_unbury"]
        params = {"all": ids is None, "ids": json.dumps(list(ids or ())), "now": now}

        def op(conn: sqlite3.Connection) -> int:
            conn.execute(replay, params)
            return int(conn.execute(unbury, params).rowcount)

        moved: int = await self._run(op, write=True)
        if moved:
            self._wake()
        return moved

    async def purge(self, ids: Sequence[str] | None, before: float | None) -> int:
        """Delete dead letters; how many."""
        sql = self._q["outbox_purge"]
        params = {"all": ids is None, "ids": json.dumps(list(ids or ())), "before": before}
        n: int = await self._run(lambda conn: conn.execute(sql, params).rowcount, write=True)
        return n

    async def stats(self, now: float) -> OutboxStats:
        """The database's counts."""
        sql = self._q["outbox_stats"]
        row = await self._run(lambda conn: conn.execute(sql, {"now": now}).fetchone(),
                              write=False)
        return OutboxStats(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])


def _deposed(term: int) -> LeaseLost:
    return LeaseLost(f"the outbox publisher's lease (term {term}) is held by another worker")


def event_from_row(r: Sequence[Any]) -> OutboxEvent:
    """An outbox row (id, name, key, payload, run_id, position, created_at, attempts,
    last_error, next_at) as the record a sink receives: ``attempt`` is the next one."""
    return OutboxEvent(r[0], r[1], r[2], r[3], r[4], int(r[5]), float(r[6]), int(r[7]) + 1,
                       r[8], float(r[9]))


def dead_from_row(r: Sequence[Any]) -> DeadLetter:
    """A dead-letter row (the event's columns, attempts, last_error, failed_at)."""
    event = OutboxEvent(r[0], r[1], r[2], r[3], r[4], int(r[5]), float(r[6]), int(r[7]), r[8])
    return DeadLetter(event, int(r[7]), str(r[8]), float(r[9]))
