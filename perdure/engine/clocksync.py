"""Keeping a process on the database's clock: measure the offset, re-measure, warn.

Leases, due times and deadlines are compared across workers, so they must be read from one
clock; the database's is the one every worker can see. A worker's own clock may be off by
seconds or minutes (a VM or container resumed from a suspend, a host without NTP), and a 30 s
error would let a fast worker steal every live run or fire timers early. So each engine
measures its clock against the database's when it opens and every ``every`` seconds after,
and works in corrected time (:class:`perdure.clock.CorrectedClock`).

One measurement is one round trip (``Storage.database_time()``); it runs on its own task,
never on a claim, a heartbeat or a journal write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from perdure.clock import CorrectedClock
from perdure.storage.port import Storage

__all__ = ["ClockSync"]

log = logging.getLogger("perdure.engine")

#: seconds between re-measurements: a clock that jumps is corrected within this
SYNC_EVERY = 10.0
#: an offset (seconds) beyond which the host's time synchronisation needs looking at
WARN_ABOVE = 1.0
#: measurements taken at start, keeping the one with the shortest round trip
FIRST_SAMPLES = 3


class ClockSync:
    """Measures ``clock``'s offset to the database's clock behind ``store``."""

    def __init__(self, clock: CorrectedClock, store: Storage, *, every: float = SYNC_EVERY,
                 warn_above: float = WARN_ABOVE) -> None:
        self.clock = clock
        self.store = store
        self.every = every
        self.warn_above = warn_above
        self._warned: float | None = None  # the offset last warned about
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Measure now (before the engine reads the time for anything shared), then keep
        measuring in the background."""
        best: tuple[float, float, float] | None = None
        for _ in range(FIRST_SAMPLES):
            sample = await self._sample()
            if best is None or sample[2] - sample[0] < best[2] - best[0]:
                best = sample
        assert best is not None
        self.clock.observe(*best)
        self._report()
        self._task = asyncio.create_task(self._loop(), name="perdure-clock-sync")

    async def stop(self) -> None:
        """Stop re-measuring."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sample(self) -> tuple[float, float, float]:
        sent = self.clock.inner.time()
        reference = await self.store.database_time()
        return sent, reference, self.clock.inner.time()

    async def _loop(self) -> None:
        while True:
            # Real time: this paces a measurement; it is not a time the fleet shares.
            await asyncio.sleep(self.every)
            try:
                self.clock.observe(*await self._sample())
            except Exception as exc:
                # The database is away: keep the last offset (clocks drift slowly); the
                # claim and heartbeat loops report the outage.
                log.debug("measuring the clock offset failed: %r", exc)
                continue
            self._report()

    def _report(self) -> None:
        offset = self.clock.offset
        if abs(offset) > self.warn_above:
            # Once per distinct offset, not every measurement.
            if self._warned is None or abs(offset - self._warned) > self.warn_above:
                self._warned = offset
                log.warning(
                    "this host's clock is %.1f s %s the database's; Perdure uses the "
                    "database's time for leases, timers and deadlines, but check the host's "
                    "time synchronisation (NTP)",
                    abs(offset), "behind" if offset > 0 else "ahead of")
        elif self._warned is not None:
            self._warned = None
            log.info("this host's clock is back within %.1f s of the database's",
                     self.warn_above)
