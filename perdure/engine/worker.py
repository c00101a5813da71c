"""The worker: claims runnable runs, keeps their leases, notices dead peers, drains.

Wake-ups: a run started or woken in this process sets an in-memory event; the worker also
sleeps no longer than until the next known due time. What other processes commit (a new run, a
cancel request, a signal to a run held in memory) arrives by push (PostgreSQL's NOTIFY; on
SQLite a datagram to the worker's Unix socket); a watcher with a timer of its own also checks
cheaply (``changed()``): every ``poll_interval`` on SQLite, once a second on PostgreSQL — the
safety net.

Storage errors never stop the loops: a claim, a heartbeat or a check that fails is logged and
tried again; the runs in memory retry their own writes while their leases hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from perdure.clock import Clock
from perdure.engine.runner import Runner
from perdure.engine.scheduler import Scheduler
from perdure.engine.stranded import log_stranded
from perdure.errors import StorageUnavailable
from perdure.hosts import hostname, pid_start
from perdure.observe.health import Readiness
from perdure.records import ClaimedRun, ErrorInfo
from perdure.storage.port import Storage

__all__ = ["Worker"]

log = logging.getLogger("perdure.worker")

#: a worker serving queues or routed runs claims from the lines at least this often (seconds)
LINES_CHECK = 1.0
#: a parked run that has begun is claimed up to ``park_after`` seconds (the horizon under
#: which a wait is held in memory rather than parked) before it falls due, at most this long:
#: its replay is done by then and its timer fires from memory, on time, holding no slot (see
#: ``workflow.sleepers``); when thousands fall due together, their claims and replays are
#: spread over the seconds before instead of queueing behind the due time
LOOKAHEAD = 5.0


class Worker:
    """Claims and drives runs of the given workflow keys, ``concurrency`` at a time."""

    def __init__(self, *, store: Storage, clock: Clock, runner: Runner, keys: Sequence[str],
                 concurrency: int, lease: float, heartbeat: float, poll_interval: float,
                 worker_id: str, stranded_every: float = 60.0,
                 scheduler: Scheduler | None = None, queues: Sequence[str] = (),
                 caps: Sequence[str] = ()) -> None:
        self.store = store
        self.clock = clock
        self.runner = runner
        self.keys = list(keys)
        self.concurrency = concurrency
        self.lease = lease
        self.heartbeat_every = heartbeat
        self.poll_interval = poll_interval
        self.id = worker_id
        self.stranded_every = stranded_every
        #: fires the database's due schedules between claims (None: this worker does not)
        self.scheduler = scheduler
        #: flow control: the queues it serves and the routing tokens its labels offer; with
        #: either, it also claims from the lines (queued and routed runs)
        self.queues = sorted(queues)
        self.caps = list(caps)
        self._lines = bool(self.queues or self.caps)
        self._lines_first = False
        self._lines_next: float | None = None
        #: the parked runs due by this time were all taken by the last claim that looked
        #: ahead and did not fill its batch
        self._covered = -math.inf
        self.host = hostname()
        self.pid = os.getpid()
        self.pid_start = pid_start(self.pid)
        self.wake = asyncio.Event()
        self.observer = runner.observer
        #: the loops whose last database round trip failed, with the error (readiness)
        self.failures: dict[str, str] = {}
        self._heartbeat_sent: float | None = None  # monotonic time of the one in flight
        self.active: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._claiming = True
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        # Another process made something happen (a NOTIFY): the watcher looks at once.
        self._remote = False
        self._watch_now: asyncio.Future[None] | None = None
        # With push, polling is only the safety net against a missed notification.
        self._poll_every = max(poll_interval, 1.0) if store.pushes else poll_interval
        #: runs of dead peers this worker made claimable (reported by on-demand hosts)
        self.peers_freed = 0

    @staticmethod
    def new_id() -> str:
        """A fresh worker id."""
        return f"{hostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    async def start(self) -> None:
        """Register, free the runs of dead peers, and start the loops."""
        await self.store.register_worker(self.id, host=self.host, pid=self.pid,
                                         pid_start=self.pid_start, now=self.clock.time(),
                                         serves=self.keys, labels=self.caps)
        self.store.set_waker(self._remote_wake)
        self.store.set_load(self._load)
        # Take the change counter's baseline before the first claim: a commit by another
        # process after it (a signal to a run claimed below) must register as a change.
        await self.store.changed()
        await self._heartbeat_once()
        await self._reap_dead_peers()
        self._tasks = [asyncio.create_task(self._claim_loop(), name="perdure-claim"),
                       asyncio.create_task(self._heartbeat_loop(), name="perdure-heartbeat"),
                       asyncio.create_task(self._watch_loop(), name="perdure-watch"),
                       asyncio.create_task(self._stranded_loop(), name="perdure-stranded")]

    def readiness(self) -> Readiness:
        """Ready while it claims and its last claim and heartbeat reached the database.
        (Called from the health endpoint's thread: it only reads, and copies the dict.)"""
        if not self._claiming:
            return Readiness(False, "draining: no new claims")
        failures = dict(self.failures)
        if failures:
            return Readiness(False, "the database is unreachable: " + "; ".join(
                f"{loop} failed ({error})" for loop, error in sorted(failures.items())))
        sent = self._heartbeat_sent
        waited = 0.0 if sent is None else time.monotonic() - sent
        if waited > max(2 * self.heartbeat_every, 1.0):
            # A database that stopped answering: the driver may keep trying for a while
            # before the heartbeat fails, but a heartbeat takes milliseconds.
            return Readiness(False, f"the database has not answered a heartbeat for "
                                    f"{waited:.0f} s")
        names = sorted({key.split("\x1f", 1)[0] for key in self.keys})
        return Readiness(True, f"claiming runs of {', '.join(names)}")

    def _failed(self, loop: str, exc: BaseException) -> None:
        info = ErrorInfo.from_exception(exc)
        self.failures[loop] = f"{info.type.rsplit('.', 1)[-1]}: {info.message}"[:300]
        self.observer.storage_error(loop)

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        backoff = self.poll_interval
        while self._claiming:
            try:
                await self._claim_cycle()
                backoff = self.poll_interval
            except Exception as exc:
                # The database went away (a restart, a lock timeout, a full disk): keep the
                # worker alive and try again, backing off up to a few seconds.
                self._failed("claim", exc)
                _log_failure("claiming", exc, f"retrying in {backoff:.2f} s")
                # A wake-up ends the pause early: the storage's listener reconnecting (the
                # database is back) or a run settling means there may be work right now.
                self.wake.clear()  # (the claim cycle claims first thing anyway)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), backoff)
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
            # Firing schedules needs no free slot: it only creates runs (any worker claims).
            scheduler, now = self.scheduler, self.clock.time()
            if scheduler is not None and scheduler.due(now) and await scheduler.fire(now):
                must_claim = True
            free = self.free_slots()
            batch = min(free, 64)
            if batch > 0 and must_claim:
                now = self.clock.time()
                claimed = await self._claim(batch, now)
                self.failures.pop("claim", None)
                self.observer.claimed(claimed, now)
                for run in claimed:
                    self._spawn(run, now + self.lease)
                if len(claimed) == batch:
                    continue  # there may be more
            must_claim = await self._idle_wait(free > 0)
            self.failures.pop("claim", None)  # it reached the database, or had no need to

    def lookahead(self) -> float:
        """How long before their due time parked runs are claimed (0 when the runs waiting in
        memory for a timer are at their cap: those would hold slots)."""
        sleepers = self.runner.sleepers
        if sleepers.count >= sleepers.cap:
            return 0.0
        return min(LOOKAHEAD, self.runner.park_after)

    def free_slots(self) -> int:
        """Slots free for new claims: runs waiting in memory for a near timer hold none (see
        ``workflow.sleepers``), so a burst of timers due together does not stall the runs
        behind them."""
        return self.concurrency - (len(self.active) - self.runner.sleepers.count)

    async def _claim(self, batch: int, now: float) -> list[ClaimedRun]:
        """The plain claim and, for a worker with queues or labels, the claim from the lines,
        in one transaction; they take turns going first, so that neither starves the other."""
        if not self._lines:
            due_by = now + self.lookahead()
            runs = await self.store.claim(worker=self.id, keys=self.keys, limit=batch,
                                          now=now, lease_until=now + self.lease,
                                          due_by=due_by)
            self._covered = due_by if len(runs) < batch else -math.inf
            return runs
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
        """Sleep until woken (by this process, or by the watcher for another process's
        commit), until the next due time, or until the next poll tick; return whether
        something may have become claimable (a quiet poll tick says no, so an idle worker does
        not take the write lock every tick)."""
        due_in: float | None = None
        if has_room:
            next_wake = await self.store.next_wake(self.keys, self.caps)
            if self._lines_next is not None:
                # When a queued or routed run falls due, or a queue's rate window has room.
                next_wake = (self._lines_next if next_wake is None
                             else min(next_wake, self._lines_next))
            if next_wake is not None:
                # Ahead of its due time, unless the last claim already looked that far ahead:
                # then it is a lease lapsing (which no claim takes early) or a run another
                # worker holds, and claiming again before then would spin.
                ahead = 0.0 if self._lines or next_wake <= self._covered else self.lookahead()
                due_in = next_wake - self.clock.time() - ahead
                if due_in <= 0:
                    return True
        slot = self.scheduler.wake_at() if self.scheduler is not None else None
        if slot is not None:
            slot_in = slot - self.clock.time()
            if slot_in <= 0:
                return True
            due_in = slot_in if due_in is None else min(due_in, slot_in)
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self.wake.wait())]
        if due_in is not None:
            waiters.append(asyncio.create_task(self.clock.sleep(due_in)))
        waiters.append(asyncio.create_task(asyncio.sleep(self._poll_every)))
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return not (waiters[-1] in done and len(done) == 1 and not self.wake.is_set())

    # -- other processes --------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        """Notice what other processes committed, on a timer of its own.

        Not in the claim loop: a busy worker's claim loop is woken by every run that settles
        and never sees a quiet tick, and a run of quick steps committing inline gives the
        event loop a turn only now and then — each hop of a wake-up chain (a timer, a task,
        ``asyncio.wait``) costs one such turn. Here a bare timer resolves a future this task
        awaits: two turns from the tick to the check, and the check itself (``changed()``,
        then the cancel flags) does not yield on SQLite.
        """
        loop = asyncio.get_running_loop()
        while True:
            tick: asyncio.Future[None] = loop.create_future()
            self._watch_now = tick
            timer = loop.call_later(self._poll_every, _resolve, tick)
            if self._remote:
                _resolve(tick)
            try:
                await tick
            finally:
                timer.cancel()
                self._watch_now = None
            try:
                await self._look_around()
            except Exception as exc:
                _log_failure("checking for other processes' changes", exc, "will retry")

    async def _look_around(self) -> None:
        remote, self._remote = self._remote, False
        changed = await self.store.changed() or remote
        if self.scheduler is not None:
            if self.scheduler.buffered:
                self.scheduler.invalidate()  # a buffered slot waits for a run ended elsewhere
                self.wake.set()
            elif changed:
                # A schedule may have been created, changed or resumed elsewhere.
                self.scheduler.invalidate(throttle=self._poll_every)
        if not changed:
            return
        # Another process committed something: a start, a wake-up, a signal to a run we
        # hold in memory, a child of one of ours ending, a cancel request for one of ours.
        # The runs re-check first (a child's end or a signal must not wait for the two reads
        # below); a cancel or a pause found below pokes its run again.
        self.runner.poke_all()
        self.wake.set()
        for run_id in await self.store.cancel_flags(self.id):
            self.runner.request_cancel(run_id)
        for run_id in await self.store.pause_flags(self.id):
            self.runner.request_pause(run_id)

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
        if self._watch_now is not None:
            _resolve(self._watch_now)
        self.wake.set()

    def _spawn(self, run: ClaimedRun, lease_until: float) -> None:
        # This worker may claim a run it still drives: its lease lapsed while the heartbeat
        # could not reach the database (or a virtual clock jumped past it). The old execution
        # is fenced off (its epoch is stale): stop it, and drive the new claim once it ended.
        held = self.active.get(run.id)
        before = held[1] if held is not None and held[0] != run.epoch else None
        task = asyncio.create_task(self._drive(run, lease_until, before),
                                   name=f"perdure-run-{run.id}")
        self.active[run.id] = (run.epoch, task)
        self._idle.clear()

    async def _drive(self, run: ClaimedRun, lease_until: float,
                     before: asyncio.Task[None] | None = None) -> None:
        try:
            if before is not None:
                self.runner.halt(run.id, "its lease lapsed and this worker claimed it again")
                before.cancel()
                await asyncio.wait([before])
            await self.runner.drive(run, lease_until)
        except asyncio.CancelledError:
            pass
        except Exception:
            # An engine fault (a storage error) must not kill the worker: the run stays leased
            # and is retried when its lease lapses.
            self.observer.storage_error("run")
            log.exception("driving run %s failed", run.id)
        finally:
            current = self.active.get(run.id)
            if current is not None and current[1] is asyncio.current_task():
                del self.active[run.id]
            if self.scheduler is not None and self.scheduler.buffered:
                self.scheduler.invalidate()  # a buffered slot may wait for this run
            if not self.active:
                self._idle.set()
            self.wake.set()

    # -- leases -----------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.heartbeat_every)
            try:
                await self._heartbeat_once()
            except Exception as exc:
                self._failed("heartbeat", exc)
                _log_failure("heartbeat", exc, "will retry")

    async def _heartbeat_once(self) -> None:
        now = self.clock.time()
        driven = dict(self.active)
        self._heartbeat_sent = time.monotonic()
        try:
            owned = await self.store.heartbeat(self.id, runs=list(driven),
                                               lease_until=now + self.lease, now=now,
                                               host=self.host, pid=self.pid,
                                               pid_start=self.pid_start, serves=self.keys)
        finally:
            self._heartbeat_sent = None
        self.failures.pop("heartbeat", None)
        # Judge only the runs this heartbeat covered: one claimed while it was in flight is
        # ours even though the heartbeat could not report it.
        for run_id, (epoch, task) in driven.items():
            if owned.get(run_id) == epoch:
                self.runner.renewed(run_id, epoch, now + self.lease)
            elif not task.done():
                # Another worker holds it now: stop driving at once (its writes would be
                # fenced off anyway). The runner logs it as a "lost" run event.
                self.runner.halt(run_id, "the lease was lost: another worker holds the run")
                task.cancel()

    async def _stranded_loop(self) -> None:
        """Log the runs no live worker serves, at start and every ``stranded_every`` seconds
        (real time: an operator's log, not workflow time)."""
        while True:
            try:
                await log_stranded(self.store, now=self.clock.time(), lease=self.lease)
            except Exception:
                log.exception("looking for stranded runs failed; will retry")
            await asyncio.sleep(self.stranded_every)

    async def _reap_dead_peers(self) -> None:
        freed = 0
        for dead in await self.store.dead_workers(self.id, self.host):
            n = await self.store.expire_worker(dead)
            freed += n
            log.info("worker %s is gone; freed its %d run(s)", dead, n,
                     extra={"dead_worker": dead, "runs_freed": n})
        self.peers_freed += freed
        if freed:
            self.wake.set()

    # -- on demand (serverless hosts) --------------------------------------------------------

    async def start_on_demand(self) -> None:
        """Start like :meth:`start` (register, free dead peers' runs, renew leases) but claim
        nothing in the background: the host claims with :meth:`claim_now`, and ends with
        :meth:`drain`."""
        self._claiming = False  # the claim loop start() creates returns at once
        await self.start()

    async def claim_now(self, limit: int, run_id: str | None = None) -> list[ClaimedRun]:
        """Claim up to ``limit`` runnable runs now (only ``run_id``, if given) and start
        driving them."""
        now = self.clock.time()
        if run_id is None:
            claimed = await self._claim(limit, now)  # queued and routed runs too
        else:
            one = await self.store.claim_run(run_id, worker=self.id, keys=self.keys, now=now,
                                             lease_until=now + self.lease)
            claimed = [] if one is None else [one]
        for run in claimed:
            self._spawn(run, now + self.lease)
        return claimed

    async def wait_on_demand(self, seconds: float, *, has_room: bool) -> bool:
        """Wait at most ``seconds`` for something to do, as the claim loop waits when idle (a
        run settled, a wake-up, another process's commit, a due time); return whether
        something may have become claimable."""
        try:
            return await asyncio.wait_for(self._idle_wait(has_room), max(seconds, 0.0))
        except TimeoutError:
            return False

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


def _resolve(tick: asyncio.Future[None]) -> None:
    if not tick.done():
        tick.set_result(None)


def _log_failure(what: str, exc: Exception, then: str) -> None:
    if isinstance(exc, StorageUnavailable):  # expected while the database is away
        log.warning("%s failed: %s; %s", what, exc, then)
    else:
        log.error("%s failed; %s", what, then, exc_info=exc)
