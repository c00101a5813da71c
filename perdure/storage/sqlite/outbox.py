"""The SQLite adapter's outbox: SQL only, on the adapter's connection thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from perdure.errors import LeaseLost
from perdure.records import DeadLetter, JournalEntry, OutboxEvent, OutboxStats
from perdure.storage.outbox_port import NewEvent, split_due
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
        q = self._q
        params = entry_params(run_id, epoch, worker, entry)
        row = {"id": event.id, "run_id": run_id, "seq": entry.seq, "event_name": event.name,
               "key": event.key, "payload": event.payload, "now": event.now,
               "ready_at": event.now}

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(q["outbox_owned"], params).fetchone() is None:
                raise lost(run_id, epoch)
            if not conn.execute(q["outbox_put_entry"], params).rowcount:
                return  # journaled already: so is its event
            if conn.execute(q["outbox_exists"], {"id": event.id}).fetchone() is not None:
                return
            if event.key is not None:
                (count,) = conn.execute(q["outbox_count_key"],
                                        {"key": event.key, "n": 1}).fetchone()
                if count > 1:
                    row["ready_at"] = None  # waits for the earlier events of its key
            conn.execute(q["outbox_insert"], row)

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

    def _fence(self, conn: sqlite3.Connection, worker: str, term: int) -> None:
        if conn.execute(self._q["outbox_fence"],
                        {"worker": worker, "term": term}).fetchone() is None:
            raise _deposed(term)

    def _remove(self, conn: sqlite3.Connection, event_id: str, now: float
                ) -> OutboxEvent | None:
        """Delete an event; if it was its key's head, the next one of the key is promoted
        (and returned)."""
        q = self._q
        row = conn.execute(q["outbox_remove"], {"id": event_id}).fetchone()
        if row is None or row[0] is None:
            return None
        left = conn.execute(q["outbox_uncount_key"], {"key": row[0]}).fetchone()
        if left is None or left[0] <= 0:
            conn.execute(q["outbox_forget_key"], {"key": row[0]})
            return None
        head = conn.execute(q["outbox_promote"], {"key": row[0], "now": now}).fetchone()
        return None if head is None else event_from_row(head)

    async def recount(self, now: float) -> None:
        """Rebuild the keys' counts and heads from the events (a repair; see queries.sql)."""
        q = self._q

        def op(conn: sqlite3.Connection) -> None:
            for name in ("outbox_recount", "outbox_recount_fill", "outbox_recount_heads",
                         "outbox_recount_free"):
                conn.execute(q[name], {"now": now})

        await self._run(op, write=True)

    async def due(self, *, now: float, limit: int, busy: Sequence[str] = ()
                  ) -> tuple[list[OutboxEvent], float | None]:
        """Events that may be tried now (soonest first, not ``busy``), and when to look
        again."""
        sql = self._q["outbox_due"]
        params = {"limit": limit + 1, "busy": json.dumps(list(busy))}
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall(), write=False)
        return split_due([event_from_row(r) for r in rows], now, limit)

    async def delivered(self, worker: str, term: int, ids: Sequence[str], now: float
                        ) -> list[OutboxEvent]:
        """Delete delivered events, fenced; the next events of their keys, now ready."""

        def op(conn: sqlite3.Connection) -> list[OutboxEvent]:
            self._fence(conn, worker, term)
            heads = [self._remove(conn, event_id, now) for event_id in ids]
            return [h for h in heads if h is not None]

        result: list[OutboxEvent] = await self._run(op, write=True)
        return result

    async def retry(self, worker: str, term: int, event_id: str, *, attempts: int,
                    error: str, next_at: float) -> None:
        """Record a failed attempt, fenced."""
        sql = self._q["outbox_retry"]
        params = {"id": event_id, "attempts": attempts, "error": error, "next_at": next_at}

        def op(conn: sqlite3.Connection) -> None:
            self._fence(conn, worker, term)
            conn.execute(sql, params)

        await self._run(op, write=True)

    async def bury(self, worker: str, term: int, event_id: str, *, attempts: int, error: str,
                   now: float) -> list[OutboxEvent]:
        """Move an event to the dead letters, fenced; the next event of its key, now ready."""
        sql = self._q["outbox_bury"]
        params = {"id": event_id, "attempts": attempts, "error": error, "now": now}

        def op(conn: sqlite3.Connection) -> list[OutboxEvent]:
            self._fence(conn, worker, term)
            conn.execute(sql, params)
            head = self._remove(conn, event_id, now)
            return [] if head is None else [head]

        result: list[OutboxEvent] = await self._run(op, write=True)
        return result

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
        q = self._q
        params = {"all": ids is None, "ids": json.dumps(list(ids or ()))}

        def op(conn: sqlite3.Connection) -> int:
            rows = conn.execute(q["outbox_dead_chosen"], params).fetchall()
            keys: set[str] = set()
            for position, event_id, run_id, seq, name, key, payload, created_at in rows:
                conn.execute(q["outbox_unbury"], {"id": event_id})
                back = conn.execute(q["outbox_reinsert"], {
                    "position": position, "id": event_id, "run_id": run_id, "seq": seq,
                    "event_name": name, "key": key, "payload": payload,
                    "created_at": created_at, "ready_at": now if key is None else None})
                if back.rowcount and key is not None:
                    conn.execute(q["outbox_count_key"], {"key": key, "n": 1})
                    keys.add(key)
            for key in sorted(keys):  # the earliest event of each key is its head
                conn.execute(q["outbox_promote"], {"key": key, "now": now})
            return len(rows)

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
    last_error, ready_at) as the record a sink receives: ``attempt`` is the next one."""
    return OutboxEvent(r[0], r[1], r[2], r[3], r[4], int(r[5]), float(r[6]), int(r[7]) + 1,
                       r[8], None if r[9] is None else float(r[9]))


def dead_from_row(r: Sequence[Any]) -> DeadLetter:
    """A dead-letter row (the event's columns, attempts, last_error, failed_at)."""
    event = OutboxEvent(r[0], r[1], r[2], r[3], r[4], int(r[5]), float(r[6]), int(r[7]), r[8])
    return DeadLetter(event, int(r[7]), str(r[8]), float(r[9]))
