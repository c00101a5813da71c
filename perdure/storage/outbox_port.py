"""The storage port's outbox: events emitted by workflows, their delivery, the dead letters.

Part of :class:`~perdure.storage.port.Storage` (its ``outbox`` attribute), in a module of its
own because it is an aggregate of its own: three tables (the outbox, the dead letters, the
publisher's lease) that only the emit, the publisher and the operator commands touch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from perdure.records import DeadLetter, JournalEntry, OutboxEvent, OutboxStats

__all__ = ["NewEvent", "OutboxStore", "split_due"]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to put in the outbox with its emit's journal entry."""

    id: str
    name: str
    key: str | None
    payload: str
    now: float


class OutboxStore(Protocol):
    """What the emit, the publisher and the operators need from a backend's outbox tables.

    The publisher's writes (``delivered``, ``retry``, ``bury``) are fenced by the lease term
    ``lead`` returned; they raise ``LeaseLost`` when another worker holds the lease now.
    """

    async def put_event(self, run_id: str, epoch: int, worker: str, entry: JournalEntry,
                        event: NewEvent) -> None:
        """Journal ``entry`` and insert ``event`` in one transaction (fenced by the run's
        epoch, like every journal write); idempotent when retried."""

    async def lead(self, worker: str, *, now: float, lease_until: float) -> int | None:
        """Take or renew the publisher's lease; its term, or None while another live worker
        holds it."""

    async def resign(self, worker: str, term: int) -> None:
        """Give the lease up (a clean stop), so a standby takes it at once."""

    async def recount(self, now: float) -> None:
        """Rebuild every key's count of undelivered events and make sure each key has its
        head (the first undelivered event) ready: a repair a new publisher runs once."""

    async def due(self, *, now: float, limit: int, busy: Sequence[str] = ()
                  ) -> tuple[list[OutboxEvent], float | None]:
        """Up to ``limit`` events that may be tried now, soonest first: the head of each key
        (its first undelivered event, once its retry time passed) and events without a key;
        not those in ``busy`` (being delivered already). With them, when to look again (now,
        if more are due; else the next retry time; None if nothing waits)."""

    async def delivered(self, worker: str, term: int, ids: Sequence[str], now: float
                        ) -> list[OutboxEvent]:
        """Remove delivered events (fenced); the next event of each of their keys becomes
        ready at ``now`` and is returned."""

    async def retry(self, worker: str, term: int, event_id: str, *, attempts: int,
                    error: str, next_at: float) -> None:
        """Record a failed attempt and when to try again (fenced)."""

    async def bury(self, worker: str, term: int, event_id: str, *, attempts: int, error: str,
                   now: float) -> list[OutboxEvent]:
        """Move an event that failed its last attempt to the dead letters (fenced); the next
        event of its key becomes ready and is returned."""

    async def pending(self, *, limit: int, key: str | None) -> list[OutboxEvent]:
        """Undelivered events in emit order (optionally of one key)."""

    async def dead_letters(self, *, limit: int) -> list[DeadLetter]:
        """Dead letters in emit order."""

    async def replay(self, ids: Sequence[str] | None, now: float) -> int:
        """Move dead letters (all of them with ``ids=None``) back into the outbox at their old
        positions, due now if first of their key. Returns how many moved."""

    async def purge(self, ids: Sequence[str] | None, before: float | None) -> int:
        """Delete dead letters (all, or those ``ids``), failed before ``before`` if given.
        Returns how many were deleted."""

    async def stats(self, now: float) -> OutboxStats:
        """The database's counts (the process-local ones are left at zero)."""

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` when events may have become deliverable: after this process put or
        replayed some, and (PostgreSQL) on a notification from another process."""


def split_due(rows: list[OutboxEvent], now: float, limit: int
              ) -> tuple[list[OutboxEvent], float | None]:
    """``rows`` (up to ``limit + 1``, soonest first) as the events due now (at most
    ``limit``) and the time to look again: now if more are due, else the first one's not due
    yet, else None."""
    due = [e for e in rows if e.next_attempt_at is not None and e.next_attempt_at <= now]
    if len(due) > limit:
        return due[:limit], now
    rest = rows[len(due):]  # soonest first: the due ones are a prefix
    return due, rest[0].next_attempt_at if rest else None
