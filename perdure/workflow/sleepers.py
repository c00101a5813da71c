"""Runs waiting in memory for a near timer, counted apart from the worker's busy slots.

A timer due within ``park_after`` is waited for in memory (a replay after a park would cost
more than the wait). Such a run executes nothing until its timer fires, so it gives its
concurrency slot back meanwhile: otherwise a burst of near timers fills every slot with runs
that only wait, and the runs behind them (due at the same moment) are claimed only as the
first ones finish. The count is capped: a coroutine waiting in memory costs about 12 KiB, so
past ``cap`` a run keeps its slot while it waits (as every run did before), and the slots bound
the memory again.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MAX_SLEEPERS", "Sleepers"]

#: runs one worker lets wait in memory for a timer without holding a slot (~120 MiB at most)
MAX_SLEEPERS = 10_000


class Sleepers:
    """How many runs wait in memory for a timer without holding a slot, up to ``cap``."""

    def __init__(self, cap: int = MAX_SLEEPERS, freed: Callable[[], None] = lambda: None) -> None:
        self.cap = cap
        #: told when a run gives its slot back (the worker may claim one more run)
        self.freed = freed
        self.count = 0

    def enter(self) -> bool:
        """A run starts waiting for its timer: whether it may give its slot back (under the
        cap); if so it must call :meth:`leave` when the wait ends."""
        if self.count >= self.cap:
            return False
        self.count += 1
        self.freed()
        return True

    def leave(self) -> None:
        """The run's timer fired (or it was poked): it executes again, in a slot."""
        self.count -= 1
