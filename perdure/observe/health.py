"""Health: whether an engine is ready for work, and whether its event loop still turns.

Kubernetes asks two questions. *Liveness*: is the process stuck (restart it)? Here: does the
event loop still run callbacks. *Readiness*: should it count as a working replica? Here: the
engine is open, its worker claims (it is not draining), and its last claim and heartbeat
reached the database. A worker whose database is down stays live (a restart would not help)
but not ready.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

__all__ = ["LoopWatch", "Readiness"]


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether an engine is ready for work (``engine.readiness()``), and why (not)."""

    ready: bool
    #: what a person reads: "claiming runs of ...", "draining", "the database is unreachable"
    reason: str

    def __bool__(self) -> bool:
        return self.ready


class LoopWatch:
    """Tells, from any thread, whether an event loop still runs its callbacks: a tick
    scheduled on the loop every ``every`` seconds records when it ran."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, every: float = 1.0) -> None:
        self.loop = loop
        self.every = every
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._handle: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        """Begin ticking (call on the loop's thread)."""
        self._tick()

    def _tick(self) -> None:
        with self._lock:
            self._last = time.monotonic()
            if not self._closed:
                self._handle = self.loop.call_later(self.every, self._tick)

    def stop(self) -> None:
        """Stop ticking (call on the loop's thread)."""
        with self._lock:
            self._closed = True
            if self._handle is not None:
                self._handle.cancel()

    def stalled_for(self) -> float:
        """Seconds the loop is overdue: 0 while it ticks on time."""
        with self._lock:
            if self._closed or self.loop.is_closed():
                return float("inf")
            return max(0.0, time.monotonic() - self._last - self.every)
