"""Time as the engine sees it: injected, so tests can move it instead of waiting for it.

The database's clock is the reference for everything workers share (leases, due times,
deadlines): an engine wraps a wall clock in a :class:`CorrectedClock` whose offset it measures
against the database. A clock that declares itself ``authoritative`` (a :class:`VirtualClock`,
moved by a test on purpose) is used as it is.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "CorrectedClock", "SystemClock", "VirtualClock", "is_authoritative"]


class Clock(Protocol):
    """The engine's source of time (unix seconds) and of timed waits.

    The engine corrects a clock to the database's unless it has a true ``authoritative``
    attribute: then its time is taken as it is (time skipping in tests).
    """

    def time(self) -> float:
        """Now, in unix seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    """Real time."""

    def time(self) -> float:
        """Now, in unix seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait in real time."""
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that moves only when told to: ``advance()`` fires every wait that falls due.

    Leases, retry back-offs and timers all read this clock, so a test can cross three days (or
    a lease expiry) instantly and deterministically. It is ``authoritative``: an engine does
    not correct it to the database's clock, since the test sets it where it wants it.
    """

    authoritative = True

    def __init__(self, start: datetime | float | None = None) -> None:
        if start is None:
            start = datetime(2030, 1, 1, tzinfo=UTC)
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        """The virtual now, in unix seconds."""
        return self._now

    def now(self) -> datetime:
        """The virtual now, as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), fut))
        await fut

    def advance(self, delta: timedelta | float) -> None:
        """Move time forward and release every wait that is now due."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.get_loop().call_soon_threadsafe(_release, fut)


def is_authoritative(clock: Clock) -> bool:
    """Whether ``clock`` is the reference itself (not corrected to the database's clock)."""
    return getattr(clock, "authoritative", False) is True


class CorrectedClock:
    """A host's clock plus its measured ``offset`` to the database's clock.

    ``time()`` is ``inner.time() + offset``: the database's time as this process best knows
    it. Waits are durations and need no correction (``sleep`` is the inner clock's). The
    offset is learned from measurements (:meth:`observe`), each one round trip to the
    database; the engine takes them when it opens and then periodically.
    """

    def __init__(self, inner: Clock) -> None:
        self.inner = inner
        #: the database's clock minus the inner clock, in seconds
        self.offset = 0.0
        self.measured = False

    def time(self) -> float:
        """The database's now, in unix seconds, as this process knows it."""
        return self.inner.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the inner clock."""
        await self.inner.sleep(seconds)

    def observe(self, sent: float, reference: float, received: float) -> None:
        """One measurement: the database read ``reference`` between ``sent`` and ``received``
        (the inner clock's times around the round trip).

        The true offset then lies in ``[reference - received, reference - sent]``. An offset
        already inside that interval is kept, so a slow round trip (a busy pool, a stalled
        loop) never makes a good estimate worse; otherwise (a first measurement, a clock that
        jumped or drifted) the offset moves to the interval's midpoint, off by at most half
        the round trip.
        """
        low, high = reference - received, reference - sent
        if self.measured and low <= self.offset <= high:
            return
        self.offset = (low + high) / 2
        self.measured = True


def _release(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
