"""The outbox publisher: delivers emitted events to the engine's sink, one publisher at a time.

Leadership: every engine with a sink runs a publisher, but only the one holding the lease row
delivers (``OutboxStore.lead``). It renews the lease every heartbeat; a standby takes it over
when it lapses, when its holder resigns (a clean stop), or at once when its holder's worker is
found dead (its pid is gone, or on PostgreSQL its advisory lock is free: the reaper forgets it
and the lease query sees its holder unregistered). Each change of holder bumps the lease's
term, and the publisher's writes are fenced by the term it holds, so a deposed publisher can
no longer delete or bury anything.

Delivery: the first undelivered event of each key (and every event without a key) is handed
to the sink, up to ``batch`` at once, each key one event at a time; a delivered event is
deleted right away, which lets the next one of its key through. A failure (an exception, or no
answer within ``timeout``) is recorded with a back-off with jitter (the ``RetryPolicy``); after
its last attempt the event moves to the dead letters. At least once: an event whose sink call
succeeded but whose deletion did not commit (the publisher died in between) is delivered again.

Wake-ups: a new event wakes the publisher in this process directly, and on PostgreSQL from
other processes by a NOTIFY; the next retry time is slept until; polling (SQLite: every
``poll_interval``; PostgreSQL: every second at most) is the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from perdure.clock import Clock
from perdure.errors import InvalidConfiguration, LeaseLost
from perdure.hosts import hostname, pid_start
from perdure.records import OutboxEvent
from perdure.retry import RetryPolicy
from perdure.storage.port import Storage

__all__ = ["DEFAULT_RETRY", "Publisher", "Sink", "check_sink"]

log = logging.getLogger("perdure")

#: what ``Engine(outbox=...)`` takes: called with each event; raising means "not delivered"
Sink = Callable[[OutboxEvent], Awaitable[None]] | Callable[[OutboxEvent], None]

#: 10 attempts over about 15 minutes (1 s doubling to 5 min), then the dead letters
DEFAULT_RETRY = RetryPolicy(max_attempts=10, initial_delay=1.0, multiplier=2.0,
                            max_delay=300.0, jitter=0.2)

_MAX_ERROR = 2000  # characters of a failure kept with the event


def check_sink(sink: object) -> tuple[Sink, bool]:
    """``sink`` and whether it is async, or ``InvalidConfiguration`` if it is not callable."""
    if not callable(sink):
        raise InvalidConfiguration(
            f"the outbox sink must be a callable taking an OutboxEvent (an async function, "
            f"say, or perdure.WebhookSink(url, secret=...)), not {type(sink).__name__}")
    call = getattr(sink, "__call__", None)  # noqa: B004 - an object with an async __call__
    is_async = inspect.iscoroutinefunction(sink) or inspect.iscoroutinefunction(call)
    return sink, is_async


class Publisher:
    """Delivers the outbox of one database while it holds the publisher's lease."""

    def __init__(self, *, store: Storage, clock: Clock, sink: Sink, is_async: bool,
                 worker_id: str, retry: RetryPolicy, lease: float, heartbeat: float,
                 poll_interval: float, timeout: float, register: bool,
                 batch: int = 64) -> None:
        self.store = store
        self.outbox = store.outbox
        self.clock = clock
        self.sink = sink
        self.is_async = is_async
        self.id = worker_id
        self.retry = retry
        self.lease = lease
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.batch = batch
        #: this engine has no worker: the publisher registers its id (so that its death is
        #: detectable) and reaps dead peers itself
        self.register = register
        self.wake = asyncio.Event()
        self.term: int | None = None
        self._lease_until = 0.0
        self._poll_every = max(poll_interval, 1.0) if store.pushes else poll_interval
        self._standby_every = min(heartbeat, 0.5)
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._done = asyncio.Event()  # an in-flight delivery finished
        # Deliveries that ended while the outbox was being read: the answer may predate their
        # outcome (a deleted event, a moved retry time), so it must not start them again.
        self._finished: set[str] = set()
        # Deliveries acknowledged and waiting to be deleted together (one statement, one
        # commit for every delivery that finished meanwhile: a group commit).
        self._acks: list[tuple[int, str, asyncio.Future[None]]] = []
        self._acking: asyncio.Task[None] | None = None
        # counters for monitoring (engine.outbox.stats())
        self.delivered = 0
        self.failed_attempts = 0
        self.dead_lettered = 0

    async def start(self) -> None:
        """Register (if the engine has no worker that did) and start the loops."""
        if self.register:
            pid = os.getpid()
            await self.store.register_worker(self.id, host=hostname(), pid=pid,
                                             pid_start=pid_start(pid), now=self.clock.time())
        self.outbox.set_waker(self.wake.set)
        self._running = True
        self._tasks = [asyncio.create_task(self._loop(), name="perdure-outbox"),
                       asyncio.create_task(self._renew_loop(), name="perdure-outbox-lease")]

    async def stop(self, grace: float) -> None:
        """Stop fetching, let deliveries in flight finish for ``grace`` seconds (cancel the
        rest: they are delivered again by the next publisher), give the lease up."""
        self._running = False
        self.wake.set()
        loop = self._tasks[0] if self._tasks else None
        if loop is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=grace)
        await self._cancel_all()
        term, self.term = self.term, None
        with contextlib.suppress(Exception):
            if term is not None:
                await self.outbox.resign(self.id, term)
            if self.register:
                await self.store.unregister_worker(self.id)
        close = getattr(self.sink, "aclose", None)  # a WebhookSink's connections
        if close is not None and inspect.iscoroutinefunction(close):
            with contextlib.suppress(Exception):
                await close()

    async def abort(self) -> None:
        """Stop at once, writing nothing (a simulated crash, for tests)."""
        self._running = False
        await self._cancel_all()
        self.term = None

    async def _cancel_all(self) -> None:
        tasks = [*self._inflight.values(), *self._tasks]
        if self._acking is not None:
            tasks.append(self._acking)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    # -- the lease --------------------------------------------------------------------------

    async def _take_lead(self) -> bool:
        if self.register:
            # No worker in this engine reaps dead peers: a dead publisher's lease must still
            # be taken over at once, so do it here (only while standing by).
            for dead in await self.store.dead_workers(self.id, hostname()):
                await self.store.expire_worker(dead)
        now = self.clock.time()
        term = await self.outbox.lead(self.id, now=now, lease_until=now + self.lease)
        if term is None:
            return False
        log.info("worker %s is the outbox publisher (term %d)", self.id, term)
        # Whatever happened to the tables before (an operator's hand, a bug), every key with
        # undelivered events has its head ready from here on.
        await self.outbox.recount(now)
        self.term, self._lease_until = term, now + self.lease
        return True

    async def _renew_loop(self) -> None:
        while True:
            await self.clock.sleep(self.heartbeat)
            term = self.term
            if term is None:
                continue
            try:
                now = self.clock.time()
                renewed = await self.outbox.lead(self.id, now=now, lease_until=now + self.lease)
            except Exception:
                log.exception("renewing the outbox publisher's lease failed; will retry")
                continue
            if renewed == term:
                self._lease_until = now + self.lease
            elif self.term == term:
                log.warning("worker %s lost the outbox publisher's lease (term %d)", self.id,
                            term)
                self.term = None
                self._lease_until = 0.0

    # -- delivering -------------------------------------------------------------------------

    async def _loop(self) -> None:
        backoff = 0.05
        while self._running:
            try:
                await self._cycle()
                backoff = 0.05
            except LeaseLost as exc:
                log.warning("outbox publisher %s stepped down: %s", self.id, exc)
                self.term = None
            except Exception:
                # The database went away: keep the publisher alive and try again.
                log.exception("the outbox publisher failed; retrying in %.2f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _cycle(self) -> None:
        if self.term is None or self.clock.time() >= self._lease_until:
            self.term = None
            if not await self._take_lead():
                await asyncio.sleep(self._standby_every)
                return
        term = self.term
        assert term is not None
        self.wake.clear()
        self._done.clear()
        room = self.batch - len(self._inflight)
        upcoming: float | None = None
        if room > 0:
            now = self.clock.time()
            self._finished.clear()
            events, upcoming = await self.outbox.due(now=now, limit=room,
                                                     busy=list(self._inflight))
            for event in events:
                if event.id not in self._finished:
                    self._start(term, event)
            if upcoming is not None and upcoming <= now:
                return  # more are due: take them as soon as there is room
        await self._idle(upcoming)

    def _start(self, term: int, event: OutboxEvent) -> None:
        """Deliver ``event`` in a task of its own (unless it is already, or there is no room:
        then the next look at the outbox finds it)."""
        if (not self._running or self.term != term or event.id in self._inflight
                or len(self._inflight) >= self.batch):
            return
        self._inflight[event.id] = asyncio.create_task(self._deliver(term, event),
                                                       name=f"perdure-outbox-{event.id}")

    async def _idle(self, upcoming: float | None) -> None:
        """Wait for a wake-up, a delivery finishing, the next retry time or the poll tick."""
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self.wake.wait()),
                                            asyncio.create_task(self._done.wait()),
                                            asyncio.create_task(asyncio.sleep(self._poll_every))]
        if upcoming is not None:
            waiters.append(asyncio.create_task(self.clock.sleep(upcoming - self.clock.time())))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _deliver(self, term: int, event: OutboxEvent) -> None:
        # Whether the loop must look at the outbox again when this ends: not after a plain
        # success (the key's next event was started with the acknowledgement, and everything
        # else due was started before), but after a failure (a new retry time), or when this
        # delivery frees the last slot of a full batch.
        look = True
        try:
            if self.term != term or self.clock.time() >= self._lease_until:
                # Deposed, or the lease ran out unrenewed (this process was paused, say):
                # another publisher may be delivering this key's later events by now.
                self.term = None if self.term == term else self.term
                return
            try:
                async with asyncio.timeout(self.timeout):
                    await self._call(event)
            except Exception as exc:
                await self._failed(term, event, exc)
                return
            await self._ack(term, event.id)
            self.delivered += 1
            look = len(self._inflight) >= self.batch
        except LeaseLost as exc:
            if self.term == term:
                log.warning("outbox publisher %s stepped down: %s", self.id, exc)
                self.term = None
        except Exception:
            # Recording the outcome failed (the database is away): the event stays in the
            # outbox and is delivered again.
            log.exception("recording the delivery of event %s failed", event.id)
        finally:
            self._inflight.pop(event.id, None)
            self._finished.add(event.id)
            if look:
                self._done.set()

    async def _ack(self, term: int, event_id: str) -> None:
        """Delete a delivered event: with every other delivery that finished meanwhile."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks.append((term, event_id, fut))
        if self._acking is None:
            self._acking = asyncio.create_task(self._flush_acks(), name="perdure-outbox-acks")
        await fut

    async def _flush_acks(self) -> None:
        try:
            while self._acks:
                # One turn of the loop first: deliveries finishing together share the commit.
                await asyncio.sleep(0)
                batch, self._acks = self._acks, []
                for term in sorted({t for t, _, _ in batch}):
                    items = [(i, f) for t, i, f in batch if t == term]
                    try:
                        heads = await self.outbox.delivered(
                            self.id, term, [i for i, _ in items], self.clock.time())
                    except Exception as exc:
                        for _, fut in items:
                            if not fut.done():
                                fut.set_exception(exc)
                    else:
                        for _, fut in items:
                            if not fut.done():
                                fut.set_result(None)
                        for head in heads:  # the next of each key: on at once
                            self._start(term, head)
        finally:
            self._acking = None

    async def _call(self, event: OutboxEvent) -> None:
        if self.is_async:
            await self.sink(event)  # type: ignore[misc]
            return
        result = await asyncio.to_thread(self.sink, event)  # a plain function: in a thread
        if inspect.isawaitable(result):
            await result

    async def _failed(self, term: int, event: OutboxEvent, exc: Exception) -> None:
        self.failed_attempts += 1
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError):
            text = f"TimeoutError: no answer within {self.timeout:g} s"
        text = text[:_MAX_ERROR]
        now = self.clock.time()
        if event.attempt >= self.retry.max_attempts:
            heads = await self.outbox.bury(self.id, term, event.id, attempts=event.attempt,
                                           error=text, now=now)
            self.dead_lettered += 1
            log.warning("outbox event %s (%s) failed %d attempt(s) and moved to the dead "
                        "letters: %s", event.id, event.name, event.attempt, text)
            for head in heads:
                self._start(term, head)
            return
        delay = self.retry.delay(event.attempt)
        await self.outbox.retry(self.id, term, event.id, attempts=event.attempt, error=text,
                                next_at=now + delay)
        log.info("outbox event %s (%s) attempt %d failed (%s); retrying in %.2f s", event.id,
                 event.name, event.attempt, text, delay)
