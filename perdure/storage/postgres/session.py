"""The PostgreSQL adapter's session connection: push wake-ups and worker liveness.

One dedicated connection per storage, kept out of the pool because it carries session state:

* ``LISTEN`` on the adapter's channel. Every statement that makes a run runnable sends a
  ``NOTIFY`` (delivered at commit); the callback calls the worker's ``wake``.
* ``LISTEN`` on the talk channel, once this process has a reader (:meth:`Session.listen_talk`):
  workflows publishing events, stream items and replies notify it with the run's id.
* One session advisory lock per registered worker. The server releases it the instant the
  connection dies — a SIGKILLed worker's socket is closed by the kernel — which is how other
  workers tell a dead worker from a live one without waiting for its leases to lapse.

A supervisor task notices a dropped connection (asyncpg reports it, and a periodic ping catches
a half-open one), reconnects with backoff, takes the locks and ``LISTEN`` again, and then calls
``wake`` once: notifications sent while we were away are lost, so the worker must look again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from perdure.storage.postgres.pool import RECONNECT_PAUSE_MAX, Connection, Reconnecting

__all__ = ["Session"]

log = logging.getLogger("perdure.storage")


class Session:
    """The LISTEN + advisory-lock connection, reconnected for the storage's life."""

    def __init__(self, connect: Callable[[], Awaitable[Connection]], *, channel: str,
                 lock_sql: str, unlock_sql: str, namespace: str,
                 own_pids: Callable[[], set[int]], keepalive: float = 5.0) -> None:
        self._connect = connect
        self.channel = channel
        self._lock_sql = lock_sql  # SELECT pg_try_advisory_lock(...($1 || $2)), see queries.sql
        self._unlock_sql = unlock_sql
        self._namespace = namespace
        self._own_pids = own_pids
        self._keepalive = keepalive
        self._conn: Connection | None = None
        self._use = asyncio.Lock()  # one operation at a time on the connection
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.workers: set[str] = set()  # whose locks we hold (and re-take after a reconnect)
        self._held: set[str] = set()  # of those, the ones the current connection holds
        self.wake: Callable[[], None] | None = None
        #: the talk channel and its listener (set by listen_talk; None: not listening)
        self.talk_channel: str | None = None
        self.on_talk: Callable[[str | None], None] | None = None
        #: called instead of ``wake`` for an ``outbox`` notification (events to deliver: the
        #: outbox publisher's business, not the workers')
        self.outbox_wake: Callable[[], None] | None = None
        #: a notification (or a reconnect) happened since ``changed()`` last looked
        self.notified = False
        #: flags another process may have set since the worker last read them ('cancel',
        #: 'pause': the payloads of request_cancel and request_pause); all of them at first
        #: and after a reconnect, when notifications may have been missed
        self.flags: set[str] = {"cancel", "pause"}
        self.reconnects = 0
        self._connected_once = False

    @property
    def started(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        """Connect now (raising what connecting raises) and supervise from then on."""
        if self._task is not None:
            return
        async with self._use:
            self._conn = await self._open()
        self._connected_once = True
        self._task = asyncio.create_task(self._supervise(), name="perdure-pg-session")

    def start_soon(self) -> None:
        """Start in the background (for ``set_waker``, which cannot await)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="perdure-pg-session")

    async def listen_talk(self, channel: str, listener: Callable[[str | None], None]) -> None:
        """LISTEN on ``channel`` (now, and after every reconnect) and pass the run id of each
        notification from another process to ``listener`` (None after a reconnect: anything
        may have been missed)."""
        first = self.on_talk is None
        self.talk_channel, self.on_talk = channel, listener
        if not first:
            return
        if self._task is None:
            await self.start()  # a client without a worker: the session starts here
            return  # (_open listened already)
        async with self._use:
            if self._conn is not None and not self._conn.is_closed():
                await self._conn.add_listener(channel, self._on_talk)

    async def lock(self, worker: str) -> None:
        """Take ``worker``'s liveness lock, held until :meth:`unlock` or until we die."""
        if worker in self.workers:
            return
        self.workers.add(worker)
        async with self._use:
            if self._conn is not None:
                await self._take(self._conn, worker)

    async def unlock(self, worker: str) -> None:
        """Release ``worker``'s lock (a clean stop)."""
        if worker not in self.workers:
            return
        self.workers.discard(worker)
        async with self._use:
            if worker in self._held and self._conn is not None and not self._conn.is_closed():
                with contextlib.suppress(Exception):
                    await self._conn.fetchval(self._unlock_sql, self._namespace, worker)
            self._held.discard(worker)

    async def close(self) -> None:
        """Stop supervising and close the connection (the server drops locks and LISTEN)."""
        self._closing = True
        self._lost.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except Exception:
                conn.terminate()

    # -- internals --------------------------------------------------------------------------

    async def _open(self) -> Connection:
        conn = await self._connect()
        self._held.clear()
        try:
            self._lost.clear()
            conn.add_termination_listener(self._on_terminated)
            await conn.add_listener(self.channel, self._on_notify)
            if self.talk_channel is not None:
                await conn.add_listener(self.talk_channel, self._on_talk)
            for worker in sorted(self.workers):
                await self._take(conn, worker)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _take(self, conn: Connection, worker: str) -> None:
        if worker in self._held:
            return
        if await conn.fetchval(self._lock_sql, self._namespace, worker):
            self._held.add(worker)
        else:
            # Held by another session: our previous connection's, if the server has not yet
            # noticed that it is gone (then it is retried at every keepalive until the server
            # lets go), or another live process using the same worker id.
            log.warning("the liveness lock of worker %s is held by another session; "
                        "will retry", worker)

    def _on_terminated(self, conn: Connection) -> None:
        self._lost.set()  # _watch checks which connection it was

    def _on_notify(self, conn: Connection, pid: int, channel: str, payload: str) -> None:
        if pid in self._own_pids():
            return  # our own process already acted on it (the engine wakes itself)
        if payload == "outbox":
            if self.outbox_wake is not None:
                self.outbox_wake()
            return
        if payload in ("cancel", "pause"):
            self.flags.add(payload)
        self._fire()

    def _on_talk(self, conn: Connection, pid: int, channel: str, payload: str) -> None:
        if pid in self._own_pids() or self.on_talk is None:
            return  # our own process rang its readers already
        self.on_talk(payload)

    def take_flag(self, kind: str) -> bool:
        """Whether ``kind`` flags may have changed since the last call (and forget it)."""
        if kind not in self.flags:
            return False
        self.flags.discard(kind)
        return True

    def _fire(self) -> None:
        self.notified = True
        if self.wake is not None:
            self.wake()

    async def _supervise(self) -> None:
        # Short pauses: notifications sent while we are away are lost, so until we are back
        # the workers learn of wake-ups only by their polls (see pool.RECONNECT_PAUSE_MAX).
        pauses = Reconnecting()
        while not self._closing:
            if self._conn is None or self._conn.is_closed():
                try:
                    async with self._use:
                        self._conn = await self._open()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.log(pauses.failed(), "PostgreSQL session connection: %s: %s; retrying "
                            "every %.2f s", type(exc).__name__, exc, RECONNECT_PAUSE_MAX)
                    await asyncio.sleep(pauses.delay)
                    pauses.advance()
                    continue
                pauses.reset()
                if self._connected_once:
                    self.reconnects += 1
                    log.info("PostgreSQL session connection re-established")
                self._connected_once = True
                self.flags.update(("cancel", "pause"))
                self._fire()  # notifications sent while we were away are lost: look again
                if self.on_talk is not None:
                    self.on_talk(None)  # readers too
                if self.outbox_wake is not None:
                    self.outbox_wake()
            await self._watch()

    async def _watch(self) -> None:
        """Return after a while, or at once when the connection is gone (reported by asyncpg,
        or a ping failed; ``_conn`` is then None)."""
        conn = self._conn
        if conn is None:
            return
        try:
            await asyncio.wait_for(self._lost.wait(), self._keepalive)
        except TimeoutError:
            try:
                async with self._use:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self._keepalive)
                    for worker in sorted(self.workers - self._held):
                        await self._take(conn, worker)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("PostgreSQL session connection unresponsive; reconnecting")
                conn.terminate()
                self._conn = None
            return
        self._lost.clear()
        if conn.is_closed():
            log.warning("PostgreSQL session connection lost; reconnecting")
            self._conn = None
