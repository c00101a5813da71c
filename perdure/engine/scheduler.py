"""Firing schedules from a worker: the due ones, when they are due, by one worker each.

A schedule is a row with a due time (``next_due``), like a timer: the worker knows the earliest
one and sleeps until it (``wake_at``), then reads the due schedules, asks
:func:`perdure.flow.firing.plan` what each firing does, and writes it with a compare-and-set
on the schedule's revision. When two workers fire the same schedule, the second write finds
the revision moved and writes nothing; and since a run's id is derived from its slot, not
even a write from a stale read could start a slot twice.

What the worker remembers (the earliest due time) is re-read after every firing, when another
process may have changed a schedule (a NOTIFY, a commit seen by polling), and when this
process changes one. A ``buffer_one`` slot waits for a run to end, not for a time: while one
is buffered, the worker re-reads whenever a run ends here and at every poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from perdure.clock import Clock
from perdure.flow.firing import plan
from perdure.storage.port import Storage

__all__ = ["Scheduler"]

log = logging.getLogger("perdure")

#: due schedules read (and fired) per pass
_PASS = 64
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0


class Scheduler:
    """Fires the due schedules of one database (see the module's docstring)."""

    def __init__(self, store: Storage, clock: Clock, *,
                 on_cancel: Callable[[list[str]], None]) -> None:
        self.store = store
        self.clock = clock
        self.on_cancel = on_cancel
        self._next_due: float | None = None
        self._known = False  # _next_due and _buffered reflect the database
        self._buffered = False
        self._retry_at = 0.0  # after a failure, loop time before which nothing is tried
        self._backoff = _BACKOFF_FIRST

    @property
    def buffered(self) -> bool:
        """Whether a schedule holds a buffered slot (it fires when a run ends)."""
        return self._buffered

    def invalidate(self) -> None:
        """A schedule may have changed: re-read before sleeping on what we knew."""
        self._known = False

    def due(self, now: float) -> bool:
        """Whether :meth:`fire` has something to do (or to find out) at ``now``."""
        if asyncio.get_running_loop().time() < self._retry_at:
            return False
        return not self._known or (self._next_due is not None and self._next_due <= now)

    def wake_at(self) -> float | None:
        """When the next slot is due, as last read (None: no slot, or not known yet)."""
        return self._next_due if self._known else None

    async def fire(self, now: float) -> int:
        """Fire what is due at ``now``, one pass; the number of runs started. A backlog
        longer than a pass is left due, so the caller claims in between passes."""
        started = 0
        try:
            if not self._known:
                # Usually a wake-up about something else (a run started elsewhere): one cheap
                # read says whether any schedule is due at all.
                self._next_due, self._buffered = await self.store.next_schedule_due()
                self._known = True
                if not self._buffered and (self._next_due is None or self._next_due > now):
                    return 0
            for row in await self.store.due_schedules(now, _PASS):
                firing = plan(row, now)
                if firing is None:
                    continue
                flagged = await self.store.fire_schedule(row.id, row.revision, firing.firing,
                                                         firing.runs, firing.cancel, now)
                if flagged is None:
                    continue  # another worker fired it (or an operator changed it) first
                started += len(firing.runs)
                if flagged:
                    self.on_cancel(flagged)
            self._next_due, self._buffered = await self.store.next_schedule_due()
            self._known = True
            self._backoff = _BACKOFF_FIRST
        except Exception as exc:
            # The database went away, or a schedule cannot be computed here (the cron
            # library is missing on this host): keep claiming runs, retry later. Real time:
            # this paces retries, it is not a time the fleet shares.
            log.error("firing schedules failed: %s: %s; retrying in %.1f s",
                      type(exc).__name__, exc, self._backoff)
            self._retry_at = asyncio.get_running_loop().time() + self._backoff
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
            self._known = False
        return started
