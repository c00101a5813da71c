"""Time as the engine sees it: injected, so tests can move it instead of waiting for it."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    """The engine's source of time (unix seconds) and of timed waits."""

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
    a lease expiry) instantly and deterministically.
    """

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


def _release(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
