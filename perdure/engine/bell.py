"""Waking the readers of this process: ``get_event``, ``read_stream`` and ``request`` callers.

The same push path as the workers': a run driven in this process rings its readers the moment
its write commits (the run's context calls :meth:`Bell.ring`); on PostgreSQL, a write by
another process arrives as a NOTIFY on the talk channel (``Storage.listen_talk``). Polling is
the safety net only: while someone reads, one task per engine checks ``data_version()`` (SQLite:
another process committed) every ``poll_interval``, or rings every reader once a second on a
backend that pushes (a notification lost in a reconnect is then found).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from perdure.storage.port import Storage

__all__ = ["Bell", "Watch"]

log = logging.getLogger("perdure")


class Watch:
    """One reader's view of the bell for one run: take a :meth:`mark` before reading, then
    :meth:`wait` on it if there was nothing (a ring in between is never lost)."""

    def __init__(self, bell: Bell, run_id: str) -> None:
        self._bell = bell
        self.run_id = run_id

    def mark(self) -> asyncio.Event:
        """The event the next ring of this run sets."""
        return self._bell._watched[self.run_id][0]

    async def wait(self, mark: asyncio.Event, timeout: float | None = None) -> None:
        """Until ``mark`` is set (a ring since it was taken) or ``timeout`` seconds."""
        if mark.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(mark.wait(), timeout)


class Bell:
    """Rings the watchers of a run when it may have published something."""

    def __init__(self, store: Storage, *, poll_interval: float) -> None:
        self._store = store
        self._interval = max(poll_interval, 1.0) if store.pushes else poll_interval
        #: per watched run: the event the next ring sets, and how many watch it
        self._watched: dict[str, tuple[asyncio.Event, int]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._listening = False

    def ring(self, run_id: str | None) -> None:
        """Wake the watchers of ``run_id`` (None: of every run)."""
        targets = list(self._watched) if run_id is None else [run_id]
        for rid in targets:
            watched = self._watched.get(rid)
            if watched is not None:
                event, users = watched
                event.set()
                self._watched[rid] = (asyncio.Event(), users)

    @contextlib.asynccontextmanager
    async def watch(self, run_id: str) -> AsyncIterator[Watch]:
        """Watch ``run_id`` for the duration of the block."""
        await self._listen()
        event, users = self._watched.get(run_id, (asyncio.Event(), 0))
        self._watched[run_id] = (event, users + 1)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="perdure-bell")
        try:
            yield Watch(self, run_id)
        finally:
            event, users = self._watched[run_id]
            if users <= 1:
                del self._watched[run_id]
            else:
                self._watched[run_id] = (event, users - 1)
            if not self._watched and self._poller is not None:
                self._poller.cancel()
                self._poller = None

    async def close(self) -> None:
        """Stop the safety-net poll and wake every reader (they find the engine closed)."""
        self.ring(None)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None

    async def _listen(self) -> None:
        if self._listening:
            return
        self._listening = True
        try:
            await self._store.listen_talk(self.ring)
        except Exception:
            # The reader still works, on the safety-net poll; the next watch tries again.
            self._listening = False
            log.warning("could not listen for published changes; readers poll instead",
                        exc_info=True)

    async def _poll(self) -> None:
        version: int | None = None
        while self._watched:
            try:
                if self._store.pushes:
                    await asyncio.sleep(self._interval)
                    self.ring(None)
                    continue
                if version is None:
                    version = await self._store.data_version()
                    # A commit between a reader's read and this baseline counts as seen:
                    # every reader reads once more.
                    self.ring(None)
                await asyncio.sleep(self._interval)
                now = await self._store.data_version()
                if now != version:
                    version = now
                    self.ring(None)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database is away (a restart): readers retry on their own reads.
                log.debug("reader poll failed", exc_info=True)
                version = None
                await asyncio.sleep(self._interval)
                self.ring(None)
