"""Driving one claimed run: replay its journal, execute what is new, record how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Callable
from typing import Any, cast

from perdure.clock import Clock
from perdure.errors import Cancelled, LeaseLost, SerializationError, StorageUnavailable
from perdure.flow.registry import FlowRegistry
from perdure.observe.observer import Execution, Observer
from perdure.records import ClaimedRun, ErrorInfo, RunStatus, run_error
from perdure.storage.port import Storage
from perdure.workflow.context import RunContext
from perdure.workflow.continuation import ContinueAsNew
from perdure.workflow.definitions import PASS_THROUGH, Workflow
from perdure.workflow.limits import release_stale
from perdure.workflow.payloads import Payloads
from perdure.workflow.registry import Registry
from perdure.workflow.scope import active_run
from perdure.workflow.sleepers import Sleepers
from perdure.workflow.steps import run_compensations, run_step
from perdure.workflow.stops import Blocked, Lost, Suspend, Unavailable

__all__ = ["Runner"]

log = logging.getLogger("perdure.runs")


class Runner:
    """Executes claimed runs for one worker."""

    def __init__(self, *, store: Storage, clock: Clock, worker: str,
                 workflows: Registry, park_after: float,
                 on_settled: Callable[[str, str | None], None],
                 notify: Callable[[], None],
                 on_published: Callable[[str], None] = lambda run_id: None,
                 payloads: Payloads | None = None, observer: Observer | None = None,
                 flow: FlowRegistry | None = None) -> None:
        self.store = store
        self.clock = clock
        self.worker = worker
        self.workflows = workflows
        self.park_after = park_after
        self.on_settled = on_settled
        self.notify = notify
        self.on_published = on_published
        self.payloads = payloads or Payloads()
        #: told of every execution: the lifecycle log, traces, metrics
        self.observer = observer or Observer(worker=worker)
        self.flow = flow
        #: set while the engine hands runs back (drain): a cancelled run is released, not lost
        self.handing_back = False
        self.contexts: dict[str, RunContext] = {}
        #: runs waiting in memory for a near timer: they hold no concurrency slot meanwhile
        #: (a run giving its slot back wakes the worker, which may claim one more)
        self.sleepers = Sleepers(freed=notify)

    def halt(self, run_id: str, why: str = "this worker stopped driving the run") -> None:
        """Make the run's next durable operation stop it (before its task is cancelled), so
        no cleanup code of the workflow can journal anything once we no longer own it."""
        ctx = self.contexts.get(run_id)
        if ctx is not None and ctx.stop is None:
            ctx.stop = Lost(why)

    def renewed(self, run_id: str, epoch: int, lease_until: float) -> None:
        """The heartbeat renewed the run's lease (at ``epoch``) until ``lease_until``."""
        ctx = self.contexts.get(run_id)
        if ctx is not None and ctx.epoch == epoch:
            ctx.lease_until = lease_until

    def abandon(self, run_id: str) -> None:
        """Stop driving the run as a crash would: nothing more is written for it."""
        ctx = self.contexts.get(run_id)
        if ctx is not None:
            ctx.abandoned = True
        self.halt(run_id)

    def poke(self, run_id: str) -> None:
        """Something the run may wait for happened in this process: re-check now."""
        ctx = self.contexts.get(run_id)
        if ctx is not None:
            ctx.poke()

    def poke_all(self) -> None:
        """Another process committed something: every waiting run re-checks."""
        for ctx in self.contexts.values():
            ctx.poke()

    def park_waiters(self) -> None:
        """Drain: runs lingering in memory for an event park now instead."""
        for ctx in self.contexts.values():
            ctx.linger = False
            ctx.poke()

    def request_pause(self, run_id: str, paused: bool = True) -> None:
        """An operator paused (or, with ``paused=False``, resumed) a run this worker drives:
        it parks at its next durable await (a wait in memory re-checks now)."""
        ctx = self.contexts.get(run_id)
        if ctx is not None and ctx.pause_requested != paused:
            ctx.pause_requested = paused
            ctx.poke()

    def request_cancel(self, run_id: str) -> None:
        """Deliver a cancellation to a run this worker drives, at its current durable await."""
        ctx = self.contexts.get(run_id)
        if ctx is not None and not ctx.cancel_requested:
            ctx.cancel_requested = True
            ctx.poke()

    async def drive(self, claimed: ClaimedRun, lease_until: float = math.inf) -> None:
        """Replay and continue ``claimed`` until it finishes, parks, blocks or is lost (or
        the database stays unavailable while its lease, until ``lease_until``, holds)."""
        wf = self.workflows.version(claimed.workflow, claimed.version)
        if wf is None:
            # Claims take only the workflow versions this worker has, so this is a guard: a
            # run this worker has no code for is a deployment error, never a failure.
            await self._no_code(claimed)
            return
        # Epoch 1 is the run's first claim ever: nothing can have been journaled yet. A
        # database that cannot answer here leaves the run leased and nothing recorded: the
        # worker logs it and the run is claimed again when its lease lapses.
        journal = [] if claimed.epoch == 1 else await self.store.load_journal(claimed.id)
        watch = self.observer.execution(claimed, len(journal))
        ctx = RunContext(claimed.id, claimed.epoch, self.worker, wf, self.store, self.clock,
                         self.park_after, {e.seq: e for e in journal}, run_step,
                         self.workflows,
                         claimed.deadline, claimed.parent_id,
                         generation=claimed.generation,
                         cancel_requested=claimed.cancel_requested,
                         recovered=claimed.recovered,
                         notify=self.notify, published=self.on_published,
                         payloads=self.payloads, hooks=watch, lease_until=lease_until,
                         pause_requested=claimed.pause_requested, flow=self.flow,
                         sleepers=self.sleepers)
        if claimed.recovered:
            # Its previous worker died mid-attempt: the slots that attempt held are free now.
            await release_stale(ctx)
        token = active_run.set(ctx)
        self.contexts[claimed.id] = ctx
        try:
            with watch:  # the execution's trace span is current in the run's task
                await self._execute(ctx, wf, claimed)
        except Suspend as suspend:
            wake_at, reason, events = suspend.wake_at, suspend.reason, suspend.waiting_for
            await self._settle(ctx, lambda: self.store.park_run(
                ctx.run_id, ctx.epoch, self.worker, status=RunStatus.WAITING,
                wake_at=wake_at, now=self.clock.time(), error=reason,
                waiting_for=events), "parked", reason=reason, wake_at=wake_at)
        except Blocked as blocked:
            why = blocked.reason
            await self._settle(ctx, lambda: self.store.finish_run(
                ctx.run_id, ctx.epoch, self.worker, status=RunStatus.BLOCKED, output=None,
                error=why, now=self.clock.time()), "blocked", reason=why)
        except (Lost, asyncio.CancelledError) as stop:
            if self.handing_back:
                # Drain: give the run back so another worker takes it at once.
                await self._settle(ctx, lambda: self.store.park_run(
                    ctx.run_id, ctx.epoch, self.worker, status=RunStatus.PENDING,
                    wake_at=self.clock.time(), now=self.clock.time()), "handed_back",
                    notify=False, retry=False)
            else:
                cause = stop if isinstance(stop, Lost) else ctx.stop
                watch.end("lost", seq=ctx.seq, now=self.clock.time(), reason=str(cause)
                          if cause is not None else "the execution was cancelled")
            if isinstance(stop, asyncio.CancelledError):
                raise
        except Unavailable:
            # Nothing was recorded as the run's outcome: it is the database's failure, not
            # the workflow's. Hand it back at once if the database takes that write (another
            # worker, or this one, replays it); else its lease lapses and it is claimed then.
            with contextlib.suppress(StorageUnavailable, LeaseLost):
                await self.store.park_run(ctx.run_id, ctx.epoch, self.worker,
                                          status=RunStatus.PENDING, wake_at=self.clock.time(),
                                          now=self.clock.time())
        finally:
            active_run.reset(token)
            self.contexts.pop(claimed.id, None)  # (a newer claim waits for this end)
            if not watch.ended:
                # An engine fault (a storage error) the worker logs: the run stays leased and
                # is claimed again when the lease lapses.
                watch.end("abandoned", seq=ctx.seq, now=self.clock.time(),
                          error=sys.exc_info()[1])

    async def _no_code(self, claimed: ClaimedRun) -> None:
        """Block a claimed run whose workflow (at its version) this worker does not have."""
        watch = self.observer.execution(claimed, 0)
        why = (f"workflow {claimed.workflow!r} version {claimed.version!r} is not registered "
               "on the worker that claimed it; deploy it and resume")
        try:
            await self.store.finish_run(claimed.id, claimed.epoch, self.worker,
                                        status=RunStatus.BLOCKED, output=None,
                                        now=self.clock.time(), error=why)
        except LeaseLost:
            watch.end("lost", seq=0, now=self.clock.time(), reason="taken over before it "
                      "settled")
        else:
            watch.end("blocked", seq=0, now=self.clock.time(), reason=why)

    async def _execute(self, ctx: RunContext, wf: Workflow[Any, Any],
                       claimed: ClaimedRun) -> None:
        if not ctx.journal and ctx.cancel_pending():
            # Cancelled (or past its deadline) before it did anything: nothing to undo.
            ctx.cancel_delivered = True
            await self._fail(ctx, Cancelled("the run was cancelled before it started"))
            return
        try:
            args, kwargs = wf.codec.decode_args(
                await ctx.load_payload(claimed.input, "the run's arguments") or "null")
        except SerializationError as exc:
            # Encoded by the code that started the run: this worker's code differs.
            ctx.halt(ctx.undecodable("the run's arguments", exc))
        try:
            value = await wf.fn(*args, **kwargs)
        except PASS_THROUGH:
            raise
        except ContinueAsNew as new:
            await self._continue(ctx, new)
            return
        except BaseException as exc:
            # Also SystemExit and the like: the workflow's own error fails its run, never the
            # worker process (which drives other runs).
            await self._fail(ctx, exc)
            return
        await ctx.settle_inflight()
        if ctx.cancel_delivered:
            # The workflow caught Cancelled and returned: still a cancelled run (and its
            # completed steps are compensated), as the caller asked.
            await self._fail(ctx, Cancelled("the run was cancelled"))
            return
        self._check_finished(ctx)
        try:
            output = wf.codec.encode_result(value, limit=self.payloads.max_payload)
        except SerializationError as exc:
            await self._fail(ctx, exc)
            return
        output = await ctx.store_payload(output, f"the result of workflow {wf.name!r}", limit=False)
        await ctx.flush()
        await self._settle(ctx, lambda: self.store.finish_run(
            ctx.run_id, ctx.epoch, self.worker, status=RunStatus.COMPLETED, output=output,
            error=None, now=self.clock.time()), "completed")

    async def _continue(self, ctx: RunContext, new: ContinueAsNew) -> None:
        """End this incarnation and requeue the run with new arguments (see
        ``workflow.continuation``): after what it left running has been journaled, and only
        if the replay consumed the whole journal."""
        if ctx.stop is not None:
            raise ctx.stop
        await ctx.settle_inflight()
        if ctx.cancel_delivered:
            await self._fail(ctx, Cancelled("the run was cancelled"))
            return
        self._check_finished(ctx)
        await ctx.flush()
        try:
            await self.store.continue_run(ctx.run_id, ctx.epoch, self.worker,
                                          version=new.version, input=new.input,
                                          now=self.clock.time())
        except LeaseLost:
            log.info("run %s was taken over before it continued as new", ctx.run_id)
            return
        self.notify()  # the next incarnation is claimable now

    async def _fail(self, ctx: RunContext, exc: BaseException) -> None:
        """The saga path: compensate, then record the failure (or the cancellation)."""
        if ctx.stop is not None:  # the workflow swallowed our stop signal
            raise ctx.stop
        error = ErrorInfo.from_exception(exc)
        # A step the workflow left running (asyncio.gather raised on a sibling's error) is
        # waited for, so that if it completes, it is compensated like the others.
        await ctx.settle_inflight()
        if ctx.stop is not None:
            raise ctx.stop
        status = RunStatus.CANCELLED if ctx.cancel_delivered else RunStatus.FAILED
        failed = await run_compensations(ctx)
        self._check_finished(ctx)
        stored = await ctx.store_payload(run_error(error, failed), "the run's error",
                                         limit=False)
        await ctx.flush()
        await self._settle(ctx, lambda: self.store.finish_run(
            ctx.run_id, ctx.epoch, self.worker, status=status, output=None,
            error=stored, now=self.clock.time()), status.value, error=exc,
            error_info=error)

    @staticmethod
    def _check_finished(ctx: RunContext) -> None:
        if ctx.stop is not None:
            raise ctx.stop
        extra = ctx.unconsumed()
        if extra:
            first = min(extra, key=lambda e: e.seq)
            ctx.halt(Blocked(
                f"non-determinism: the run ended after {ctx.seq} operation(s) but the journal "
                f"holds more, starting with {first.kind} {first.name!r} at seq {first.seq}. "
                f"Deploy the code this run started with (workflow {ctx.workflow.name!r} "
                f"version {ctx.workflow.version!r}) and resume the run.", seq=first.seq))

    async def _settle(self, ctx: RunContext, write: Callable[[], Any], outcome: str, *,
                      notify: bool = True, retry: bool = True, **detail: Any) -> None:
        """Write how the run stopped (``outcome``, with its ``detail`` for the observer),
        retried while the database is unavailable and the lease holds (unless ``retry`` is
        off: a drain must not outlast its grace period); then (unless ``notify`` is off) tell
        its waiters and a parent driven in this process."""
        watch = cast(Execution, ctx.hooks)  # drive() gives every context its execution
        try:
            await (ctx.retrying(write) if retry else write())
        except LeaseLost:
            watch.end("lost", seq=ctx.seq, now=self.clock.time(),
                      reason="taken over before it settled")
            return
        except StorageUnavailable as exc:
            # The lease lapses and the run is claimed and replayed.
            log.warning("run %s: could not record how it stopped (%s)", ctx.run_id, exc)
            return
        watch.end(outcome, seq=ctx.seq, now=self.clock.time(), **detail)
        if notify:
            if ctx.parent_id is not None:
                self.poke(ctx.parent_id)
            self.on_settled(ctx.run_id, ctx.parent_id)
