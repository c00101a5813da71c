"""The worker: claims runnable runs, keeps their leases, notices dead peers, drains.

Wake-ups: a run started or woken in this process sets an in-memory event; the worker also
sleeps no longer than until the next known due time, and checks cheaply (``changed()``) for
commits by other processes at a short interval — the safety net, not the main path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any

from perdure.clock import Clock
from perdure.engine.runner import Runner
from perdure.hosts import hostname, pid_start
from perdure.records import ClaimedRun
from perdure.storage.port import Storage

__all__ = ["Worker"]

log = logging.getLogger("perdure")

#: a worker serving queues or routed runs claims from the lines at least this often (seconds)
LINES_CHECK = 1.0


class Worker:
    """Claims and drives runs of the given workflow keys, ``concurrency`` at a time."""

    def __init__(self, *, store: Storage, clock: Clock, runner: Runner, keys: Sequence[str],
                 concurrency: int, lease: float, heartbeat: float, poll_interval: float,
                 worker_id: str, queues: Sequence[str] = (), caps: Sequence[str] = ()
                 ) -> None:
        self.store = store
        self.clock = clock
        self.runner = runner
        self.keys = list(keys)
        self.concurrency = concurrency
        self.lease = lease
        self.heartbeat_every = heartbeat
        self.poll_interval = poll_interval
        self.id = worker_id
        #: flow control: the queues it serves and the routing tokens its labels offer; with
        #: either, it also claims from the lines (queued and routed runs)
        self.queues = sorted(queues)
        self.caps = list(caps)
        self._lines = bool(self.queues or self.caps)
        self._lines_first = False
        self._lines_next: float | None = None
        self.host = hostname()
        self.pid = os.getpid()
        self.pid_start = pid_start(self.pid)
        self.wake = asyncio.Event()
        self.active: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._claiming = True
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        # Another process made something happen (a NOTIFY, or a commit seen by polling).
        self._remote = False
        # With push, polling is only the safety net against a missed notification.
        self._poll_every = max(poll_interval, 1.0) if store.pushes else poll_interval

    @staticmethod
    def new_id() -> str:
        """A fresh worker id."""
        return f"{hostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    async def start(self) -> None:
        """Register, free the runs of dead peers, and start the loops."""
        await self.store.register_worker(self.id, host=self.host, pid=self.pid,
                                         pid_start=self.pid_start, now=self.clock.time(),
                                         labels=self.caps)
        self.store.set_waker(self._remote_wake)
        self.store.set_load(self._load)
        # Take the change counter's baseline before the first claim: a commit by another
        # process after it (a signal to a run claimed below) must register as a change.
        await self.store.changed()
        await self._heartbeat_once()
        await self._reap_dead_peers()
        self._tasks = [asyncio.create_task(self._claim_loop(), name="perdure-claim"),
                       asyncio.create_task(self._heartbeat_loop(), name="perdure-heartbeat")]

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        backoff = self.poll_interval
        while self._claiming:
            try:
                await self._claim_cycle()
                backoff = self.poll_interval
            except Exception:
                # The database went away (a restart, a lock timeout): keep the worker alive
                # and try again, backing off up to a few seconds.
                log.exception("claiming failed; retrying in %.2f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _claim_cycle(self) -> None:
        loop = asyncio.get_running_loop()
        last_reap = loop.time()
        must_claim = True
        while self._claiming:
            if loop.time() - last_reap >= self.poll_interval * 5:
                # Checked every cycle, not only when idle: a busy worker must still notice a
                # dead peer and take its runs. (Real time: a dead process is not a timer.)
                last_reap = loop.time()
                await self._reap_dead_peers()
            self.wake.clear()
            free = self.concurrency - len(self.active)
            batch = min(free, 64)
            if batch > 0 and must_claim:
                now = self.clock.time()
                claimed = await self._claim(batch, now)
                for run in claimed:
                    self._spawn(run)
                if len(claimed) == batch:
                    continue  # there may be more
            must_claim = await self._idle_wait(free > 0)

    async def _claim(self, batch: int, now: float) -> list[ClaimedRun]:
        """The plain claim and, for a worker with queues or labels, the claim from the lines,
        in one transaction; they take turns going first, so that neither starves the other."""
        if not self._lines:
            return await self.store.claim(worker=self.id, keys=self.keys, limit=batch,
                                          now=now, lease_until=now + self.lease)
        self._lines_first = not self._lines_first
        got = await self.store.claim_flow(
            worker=self.id, keys=self.keys, queues=self.queues, caps=self.caps, limit=batch,
            clock=self.clock.time, lease=self.lease, plain=True,
            plain_first=not self._lines_first)
        # The lines are also looked at every LINES_CHECK seconds: the slow safety net under
        # the pushed wake-ups (a slot freed, a run entering a line).
        check = self.clock.time() + LINES_CHECK
        self._lines_next = check if got.next_at is None else min(got.next_at, check)
        return got.runs

    async def _idle_wait(self, has_room: bool) -> bool:
        """Sleep until woken, until the next due time, or until the next cross-process check;
        return whether something may have become claimable (a quiet poll tick says no, so an
        idle worker does not take the write lock every tick)."""
        due_in: float | None = None
        if has_room:
            next_wake = await self.store.next_wake(self.keys, self.caps)
            if self._lines_next is not None:
                # When a queued or routed run falls due, or a queue's rate window has room.
                next_wake = (self._lines_next if next_wake is None
                             else min(next_wake, self._lines_next))
            if next_wake is not None:
                due_in = next_wake - self.clock.time()
                if due_in <= 0:
                    return True
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self.wake.wait())]
        if due_in is not None:
            waiters.append(asyncio.create_task(self.clock.sleep(due_in)))
        waiters.append(asyncio.create_task(asyncio.sleep(self._poll_every)))
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        quiet_tick = waiters[-1] in done and len(done) == 1 and not self.wake.is_set()
        if quiet_tick and await self.store.changed():
            self._remote = True
            quiet_tick = False
        if quiet_tick and self.wake.is_set():
            # Woken while we asked: the loop clears the event next, so this is the last
            # chance to see it (a run in a queue's line has no due time to fall back on).
            quiet_tick = False
        if self._remote:
            # Another process committed something: a start, a wake-up, a signal to a run we
            # hold in memory, a cancel request for one of ours.
            self._remote = False
            for run_id in await self.store.cancel_flags(self.id):
                self.runner.request_cancel(run_id)
            self.runner.poke_all()
        return not quiet_tick

    def _load(self) -> int:
        """Operations in flight: the runs driven, plus the concurrent steps of a lone run (a
        fan-out is one run with many writes to group-commit)."""
        runs = len(self.active)
        if runs != 1:
            return runs
        ctx = next(iter(self.runner.contexts.values()), None)
        return 1 if ctx is None else max(1, ctx.inflight)

    def _remote_wake(self) -> None:
        self._remote = True
        self.wake.set()

    def _spawn(self, run: ClaimedRun) -> None:
        task = asyncio.create_task(self._drive(run), name=f"perdure-run-{run.id}")
        self.active[run.id] = (run.epoch, task)
        self._idle.clear()

    async def _drive(self, run: ClaimedRun) -> None:
        try:
            await self.runner.drive(run)
        except asyncio.CancelledError:
            pass
        except Exception:
            # An engine fault (a storage error) must not kill the worker: the run stays leased
            # and is retried when its lease lapses.
            log.exception("driving run %s failed", run.id)
        finally:
            current = self.active.get(run.id)
            if current is not None and current[1] is asyncio.current_task():
                del self.active[run.id]
            if not self.active:
                self._idle.set()
            self.wake.set()

    # -- leases -----------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.heartbeat_every)
            try:
                await self._heartbeat_once()
            except Exception:
                log.exception("heartbeat failed; will retry")

    async def _heartbeat_once(self) -> None:
        now = self.clock.time()
        driven = dict(self.active)
        owned = await self.store.heartbeat(self.id, runs=list(driven),
                                           lease_until=now + self.lease, now=now,
                                           host=self.host, pid=self.pid,
                                           pid_start=self.pid_start)
        # Judge only the runs this heartbeat covered: one claimed while it was in flight is
        # ours even though the heartbeat could not report it.
        for run_id, (epoch, task) in driven.items():
            if owned.get(run_id) != epoch and not task.done():
                # Another worker holds it now: stop driving at once (its writes would be
                # fenced off anyway).
                log.warning("lost the lease of run %s; stopping it", run_id)
                self.runner.halt(run_id)
                task.cancel()

    async def _reap_dead_peers(self) -> None:
        freed = 0
        for dead in await self.store.dead_workers(self.id, self.host):
            n = await self.store.expire_worker(dead)
            freed += n
            log.info("worker %s is gone; freed its %d run(s)", dead, n)
        if freed:
            self.wake.set()

    # -- stopping ---------------------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """Stop claiming, let in-flight runs finish for ``grace`` seconds, hand back the rest."""
        self._claiming = False
        self.wake.set()
        claim = self._tasks[0] if self._tasks else None
        if claim is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await claim
        self.runner.park_waiters()
        if self.active:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        self.runner.handing_back = True
        for run_id in self.active:
            self.runner.halt(run_id)
        tasks = [task for _, task in self.active.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks[1:], return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.store.unregister_worker(self.id)

    async def abort(self) -> None:
        """Stop everything at once without writing anything (a simulated crash, for tests)."""
        self._claiming = False
        for run_id in self.active:
            self.runner.abandon(run_id)
        tasks = [task for _, task in self.active.values()] + self._tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
