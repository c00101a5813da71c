"""``engine.outbox``: what waits for delivery, the dead letters, and the operator's moves."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from perdure.errors import InvalidConfiguration
from perdure.records import DeadLetter, OutboxEvent, OutboxStats

if TYPE_CHECKING:
    from perdure.engine.engine import Engine

__all__ = ["Outbox"]


class Outbox:
    """The transactional outbox of an engine's database (``engine.outbox``).

    Works on any engine, a client (``worker=False``) included: the events are rows, shared by
    every process on the database. Delivery itself is the publisher's, on engines given a
    sink (``Engine(outbox=sink)``).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def pending(self, *, limit: int = 100, key: str | None = None) -> list[OutboxEvent]:
        """Events not delivered yet, in emit order (optionally those of one ``key``); each
        with its next attempt's number, its last error and when it is next tried."""
        self._engine._check_open()
        return await self._engine.store.outbox.pending(limit=_limit(limit), key=key)

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Events that failed every delivery attempt, in emit order, with their last error."""
        self._engine._check_open()
        return await self._engine.store.outbox.dead_letters(limit=_limit(limit))

    async def replay(self, ids: Iterable[str] | None = None) -> int:
        """Move dead letters (those ``ids``, or all of them) back into the outbox, due now,
        with a fresh set of attempts, at their old place in their key's order. Returns how
        many moved."""
        self._engine._check_open()
        return await self._engine.store.outbox.replay(_ids(ids), self._engine.clock.time())

    async def purge(self, ids: Iterable[str] | None = None, *,
                    older_than: timedelta | float | None = None) -> int:
        """Delete dead letters for good: those ``ids`` (or all), and of those only the ones
        that failed more than ``older_than`` (a timedelta or seconds) ago, if given. Returns
        how many were deleted."""
        self._engine._check_open()
        before = None
        if older_than is not None:
            age = older_than.total_seconds() if isinstance(older_than, timedelta) \
                else older_than
            if isinstance(age, bool) or not isinstance(age, int | float) \
                    or not 0 <= age < math.inf:
                raise InvalidConfiguration(f"older_than must be a timedelta or a number of "
                                           f"seconds >= 0, not {older_than!r}")
            before = self._engine.clock.time() - age
        return await self._engine.store.outbox.purge(_ids(ids), before)

    async def stats(self) -> OutboxStats:
        """Backlog and failure counts (for monitoring): the database's, and this process's
        publisher's since the engine opened."""
        self._engine._check_open()
        counts = await self._engine.store.outbox.stats(self._engine.clock.time())
        publisher = self._engine._publisher
        if publisher is None:
            return counts
        return OutboxStats(counts.pending, counts.retrying, counts.dead,
                           counts.oldest_pending_at, counts.leader, publisher.delivered,
                           publisher.failed_attempts, publisher.dead_lettered)


def _limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise InvalidConfiguration(f"limit must be a positive int, not {limit!r}")
    return limit


def _ids(ids: Iterable[str] | None) -> list[str] | None:
    if ids is None:
        return None
    if isinstance(ids, str | bytes):
        raise InvalidConfiguration("pass event ids as a list (a lone string would be read as "
                                   "its characters)")
    out = list(ids)
    bad = [i for i in out if not isinstance(i, str) or not i]
    if bad:
        raise InvalidConfiguration(f"event ids must be non-empty strings, not {bad[0]!r}")
    return out
