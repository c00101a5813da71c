"""Taking a step's limits for one attempt, and giving them back.

Each attempt of a step with ``limits`` takes a token of every limit first, in one write that
counts what is in use (see the storage port's ``take_limits``); without one, the run parks
(status ``waiting``, reason ``limit NAME``) and holds no worker slot: it wakes at the known time
a rate has room again, or when a released semaphore slot wakes it. Semaphore slots are given
back when the attempt ends; a slot of a worker that died counts only until its run is
recovered (see ``release_stale``).
"""

from __future__ import annotations

import contextlib
import logging

from perdure.errors import InvalidConfiguration
from perdure.flow.definitions import Limit
from perdure.workflow.context import RunContext
from perdure.workflow.stops import Blocked, Suspend

__all__ = ["acquire", "release", "release_stale"]

log = logging.getLogger("perdure")


def _resolve(ctx: RunContext, wanted: tuple[Limit | str, ...], step: str) -> list[Limit]:
    if ctx.flow is None:
        ctx.halt(Blocked(f"step {step!r} takes limits, but this worker's engine has no flow "
                         "registry; deploy an engine that declares them and resume the run"))
    try:
        return [ctx.flow.limit(item) for item in wanted]
    except InvalidConfiguration as exc:
        # The code names a limit this deployment does not declare: a deployment error.
        ctx.halt(Blocked(f"step {step!r}: {exc}; deploy it and resume the run"))


async def acquire(ctx: RunContext, seq: int, wanted: tuple[Limit | str, ...],
                  step: str) -> bool:
    """Take a token of every limit for attempt ``seq`` or park the run; returns whether the
    attempt holds semaphore slots (to give back when it ends)."""
    limits = _resolve(ctx, wanted, step)
    assert ctx.flow is not None
    now = ctx.clock.time()
    flow, names = ctx.flow, [lim.name for lim in limits]
    await ctx.guard(lambda: flow.ensure(ctx.store, limits, now))
    # Safe to repeat after a lost acknowledgement: a second hold of the same (run, seq, epoch)
    # replaces the first, and a rate grant counted twice only makes the limit stricter.
    take = await ctx.guard(lambda: ctx.store.take_limits(
        ctx.run_id, ctx.epoch, ctx.worker, seq=seq, names=names, clock=ctx.clock.time))
    if take.granted:
        return any(lim.concurrency is not None for lim in limits)
    wake = take.retry_at
    if ctx.deadline is not None and not ctx.cancel_delivered:
        wake = ctx.deadline if wake is None else min(wake, ctx.deadline)
    await ctx.flush()
    ctx.halt(Suspend(wake, "limit " + ", ".join(take.blocked),
                     tuple(f"limit:{name}" for name in take.blocked)))


async def release(ctx: RunContext, seq: int) -> None:
    """Give back the slots attempt ``seq`` holds and wake runs parked on them. Best effort:
    if this fails, the slots count until the run settles or is recovered."""
    if ctx.abandoned:
        return  # a simulated crash writes nothing: recovery frees the slots
    try:
        await ctx.store.release_limits(ctx.run_id, seq=seq, epoch=ctx.epoch,
                                       now=ctx.clock.time())
    except Exception:
        log.warning("run %s: could not release the limits of seq %d now; they free up when "
                    "the run settles", ctx.run_id, seq, exc_info=True)


async def release_stale(ctx: RunContext) -> None:
    """A run recovered from a worker that died: the slots its attempts held at earlier epochs
    no longer count; wake the runs parked on them."""
    with contextlib.suppress(Exception):
        await ctx.store.release_limits(ctx.run_id, seq=None, epoch=ctx.epoch,
                                       now=ctx.clock.time())
