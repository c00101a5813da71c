"""The PostgreSQL adapter's outbox: SQL only (the ``outbox_*`` queries), on the adapter's pool.

Every operation is one statement, retried once after a lost connection (each is idempotent:
see queries.sql). Push: the emit and the replay send a NOTIFY with payload ``outbox`` on the
adapter's channel; the session connection hands it to the publisher's waker, not the workers'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from perdure.errors import LeaseLost
from perdure.records import DeadLetter, JournalEntry, OutboxEvent, OutboxStats
from perdure.storage.outbox_port import NewEvent, split_due
from perdure.storage.params import entry_params, lost

if TYPE_CHECKING:
    from perdure.storage.postgres.adapter import PostgresStorage

__all__ = ["PostgresOutbox"]


class PostgresOutbox:
    """The outbox tables of one :class:`~perdure.storage.postgres.PostgresStorage`."""

    def __init__(self, storage: PostgresStorage) -> None:
        self._storage = storage
        self._wake: Callable[[], None] = lambda: None

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Called after this process put or replayed events, and on another process's
        ``outbox`` notification (the session connection listens; started here if needed)."""
        self._wake = wake
        self._storage.listen_outbox(wake)

    async def _row(self, name: str, params: dict[str, Any]) -> Any:
        return await self._storage._fetchrow(name, params)

    async def put_event(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                        event: NewEvent) -> None:
        """Journal the emit and insert its event in one statement, fenced."""
        params = entry_params(run_id, epoch, worker, entry)
        params.update({"event_id": event.id, "event_name": event.name, "key": event.key,
                       "payload": event.payload, "now": float(event.now)})
        row = await self._row("outbox_put", params)
        if not row["owned"]:
            raise lost(run_id, epoch)
        self._wake()

    async def lead(self, worker: str, *, now: float, lease_until: float) -> int | None:
        """Take or renew the lease; the term, or None."""
        row = await self._row("outbox_lead", {"worker": worker, "now": float(now),
                                              "lease_until": float(lease_until)})
        return None if row is None else int(row["term"])

    async def resign(self, worker: str, term: int) -> None:
        """Release the lease."""
        await self._storage._fetch("outbox_resign", {"worker": worker, "term": term})

    async def _two_steps(self, first: str, params: dict[str, Any], now: float
                         ) -> tuple[Any, list[OutboxEvent]]:
        """``first`` (which counts keys down or up, locking their rows), then outbox_promote
        in the same transaction: a new statement, so it sees every event of those keys that
        committed before the locks were granted. Retried after a lost connection: a step that
        committed finds nothing left to do."""
        step1 = self._storage._args(first, params)

        async def op(conn: Any, retrying: bool) -> tuple[Any, list[OutboxEvent]]:
            async with conn.transaction():
                row = await conn.fetchrow(*step1)
                keys, emptied = list(row["keys"]), list(row.get("emptied") or [])
                heads: list[Any] = []
                if keys or emptied:
                    heads = await conn.fetch(*self._storage._args("outbox_promote", {
                        "keys": keys, "emptied": emptied, "now": float(now)}))
                return row, [_event(h) for h in heads]

        return await self._storage._call(op, retry=True)

    async def recount(self, now: float) -> None:
        """Rebuild the keys' counts and heads from the events, emits held off meanwhile."""
        args = [self._storage._args(name, {"now": float(now)}) for name in (
            "outbox_recount_lock", "outbox_recount_clear", "outbox_recount_fill",
            "outbox_recount_heads", "outbox_recount_free")]

        async def op(conn: Any, retrying: bool) -> None:
            async with conn.transaction():
                for statement in args:
                    await conn.execute(*statement)

        await self._storage._call(op, retry=True)

    async def due(self, *, now: float, limit: int, busy: Sequence[str] = ()
                  ) -> tuple[list[OutboxEvent], float | None]:
        """Events that may be tried now (soonest first, not ``busy``), and when to look
        again."""
        rows = await self._storage._fetch("outbox_due", {"limit": limit + 1,
                                                         "busy": list(busy)})
        return split_due([_event(r) for r in rows], now, limit)

    async def delivered(self, worker: str, term: int, ids: Sequence[str], now: float
                        ) -> list[OutboxEvent]:
        """Delete delivered events, fenced; the next events of their keys, now ready."""
        row, heads = await self._two_steps("outbox_delivered", {
            "worker": worker, "term": term, "ids": list(ids)}, now)
        _check_held(row, term)
        return heads

    async def retry(self, worker: str, term: int, event_id: str, *, attempts: int,
                    error: str, next_at: float) -> None:
        """Record a failed attempt, fenced."""
        row = await self._row("outbox_retry", {"worker": worker, "term": term, "id": event_id,
                                               "attempts": attempts, "error": error,
                                               "next_at": float(next_at)})
        _check_held(row, term)

    async def bury(self, worker: str, term: int, event_id: str, *, attempts: int, error: str,
                   now: float) -> list[OutboxEvent]:
        """Move an event to the dead letters, fenced; the next event of its key, now ready."""
        row, heads = await self._two_steps("outbox_bury", {
            "worker": worker, "term": term, "id": event_id, "attempts": attempts,
            "error": error, "now": float(now)}, now)
        _check_held(row, term)
        return heads

    async def pending(self, *, limit: int, key: str | None) -> list[OutboxEvent]:
        """Undelivered events in emit order."""
        rows = await self._storage._fetch("outbox_pending", {"limit": limit, "key": key})
        return [_event(r) for r in rows]

    async def dead_letters(self, *, limit: int) -> list[DeadLetter]:
        """Dead letters in emit order."""
        rows = await self._storage._fetch("outbox_dead_list", {"limit": limit})
        return [DeadLetter(OutboxEvent(r[0], r[1], r[2], r[3], r[4], int(r[5]), float(r[6]),
                                       int(r[7]), r[8]), int(r[7]), str(r[8]), float(r[9]))
                for r in rows]

    async def replay(self, ids: Sequence[str] | None, now: float) -> int:
        """Dead letters back into the outbox; how many."""
        row, _ = await self._two_steps("outbox_replay", {"all": ids is None,
                                                      "ids": list(ids or ()),
                                                      "now": float(now)}, now)
        moved = int(row["moved"])
        if moved:
            self._wake()
        return moved

    async def purge(self, ids: Sequence[str] | None, before: float | None) -> int:
        """Delete dead letters; how many."""
        row = await self._row("outbox_purge", {"all": ids is None, "ids": list(ids or ()),
                                               "before": before})
        return int(row[0])

    async def stats(self, now: float) -> OutboxStats:
        """The database's counts."""
        r = await self._row("outbox_stats", {"now": float(now)})
        return OutboxStats(int(r[0]), int(r[1]), int(r[2]),
                           None if r[3] is None else float(r[3]), r[4])


def _check_held(row: Any, term: int) -> None:
    if not row["held"]:
        raise LeaseLost(f"the outbox publisher's lease (term {term}) is held by another worker")


def _event(r: Any) -> OutboxEvent:
    return OutboxEvent(r[0], r[1], r[2], r[3], r[4], int(r[5]), float(r[6]), int(r[7]) + 1,
                       r[8], None if r[9] is None else float(r[9]))
