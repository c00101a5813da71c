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
import math
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
        self._buffered = False
        # Loop times (real, monotonic): of the last read of the schedules, from which they
        # must be read again (None: what we know is current), before which nothing is tried
        # after a failure.
        self._read_at = -math.inf
        self._stale_at: float | None = -math.inf
        self._retry_at = -math.inf
        self._backoff = _BACKOFF_FIRST

    @property
    def buffered(self) -> bool:
        """Whether a schedule holds a buffered slot (it fires when a run ends)."""
        return self._buffered

    def invalidate(self, *, throttle: float = 0.0) -> None:
        """A schedule may have changed: read them again before relying on what we know.

        ``throttle``: not sooner than this many seconds after the last read. A wake-up from
        another process is usually about something else (a run started), and on a busy
        database they come by the hundred; a schedule created elsewhere is then noticed
        within ``throttle`` (and a slot it makes due meanwhile fires late, not never)."""
        loop_time = asyncio.get_running_loop().time()
        at = max(loop_time, self._read_at + throttle)
        self._stale_at = at if self._stale_at is None else min(self._stale_at, at)

    def due(self, now: float) -> bool:
        """Whether :meth:`fire` has something to do (or to find out) at ``now``."""
        loop_time = asyncio.get_running_loop().time()
        if loop_time < self._retry_at:
            return False
        if self._stale_at is not None and loop_time >= self._stale_at:
            return True
        return self._next_due is not None and self._next_due <= now

    def wake_at(self) -> float | None:
        """When the next slot is due, as last read (None: no slot, or retrying after a
        failure: the worker's poll brings it back, never a loop on a slot it cannot fire)."""
        if asyncio.get_running_loop().time() < self._retry_at:
            return None
        return self._next_due

    async def _read(self) -> None:
        self._read_at = asyncio.get_running_loop().time()
        self._stale_at = None
        self._next_due, self._buffered = await self.store.next_schedule_due()

    async def fire(self, now: float) -> int:
        """Fire what is due at ``now``, one pass; the number of runs started. A backlog
        longer than a pass is left due, so the caller claims in between passes."""
        started = 0
        failed = False
        try:
            stale = self._stale_at
            if stale is not None and asyncio.get_running_loop().time() >= stale:
                # Usually a wake-up about something else: one cheap read says whether any
                # schedule is due at all.
                await self._read()
                if not self._buffered and (self._next_due is None or self._next_due > now):
                    return 0
            for row in await self.store.due_schedules(now, _PASS):
                try:
                    firing = plan(row, now)
                except Exception as exc:
                    # This host cannot compute it (the cron library is missing here, or does
                    # not read the stored spec): the other schedules still fire.
                    log.error("schedule %r cannot be fired here: %s: %s", row.id,
                              type(exc).__name__, exc)
                    failed = True
                    continue
                if firing is None:
                    continue
                flagged = await self.store.fire_schedule(row.id, row.revision, firing.firing,
                                                         firing.runs, firing.cancel, now)
                if flagged is None:
                    continue  # another worker fired it (or an operator changed it) first
                started += len(firing.runs)
                if flagged:
                    self.on_cancel(flagged)
            await self._read()
        except Exception as exc:
            # The database went away: keep claiming runs (the claim loop reports the
            # outage), retry later.
            log.error("firing schedules failed: %s: %s", type(exc).__name__, exc)
            failed = True
            self.invalidate()
        if failed:
            # A schedule that stays due cannot be allowed to spin the loop. Real time: this
            # paces retries, it is not a time the fleet shares.
            self._retry_at = asyncio.get_running_loop().time() + self._backoff
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
        else:
            self._backoff = _BACKOFF_FIRST
        return started
