"""Durable waits: timers, signals, child workflows and parallel groups.

Each function takes its sequence number when it is *called* (not when awaited), so
``gather(a(), b())`` numbers ``a`` before ``b`` on every replay. A wait that cannot be satisfied
soon parks the run: the coroutine is dropped and the database row records what wakes it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Coroutine
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, cast, overload

from perdure import codec
from perdure.context import RunContext, Stop, Suspend, current
from perdure.definitions import Workflow
from perdure.errors import (
    ChildFailed,
    InvalidConfiguration,
    SignalTimeout,
    UnknownWorkflowError,
)
from perdure.records import ErrorInfo, JournalEntry, RunStatus
from perdure.storage.port import NewRun

__all__ = ["ChildHandle", "gather", "sleep", "sleep_until", "start_child", "wait_for_signal"]

T = TypeVar("T")
R = TypeVar("R")


# -- timers ---------------------------------------------------------------------------------

def _seconds(duration: timedelta | float, what: str) -> float:
    if isinstance(duration, timedelta):
        seconds = duration.total_seconds()
    elif isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        raise InvalidConfiguration(f"{what} must be a timedelta or a number of seconds, "
                                   f"not {type(duration).__name__}")
    if seconds < 0 or seconds != seconds:
        raise InvalidConfiguration(f"{what} must not be negative (got {duration!r})")
    return seconds


def sleep(duration: timedelta | float) -> Coroutine[Any, Any, None]:
    """Sleep durably for ``duration`` (a ``timedelta`` or seconds).

    The due time is journaled on first encounter, so a replay never moves it; a long sleep
    parks the run (no coroutine, no thread) until a worker wakes it when it falls due.
    """
    seconds = _seconds(duration, "sleep duration")
    ctx = current("perdure.sleep()")
    seq = ctx.take_seq()
    return _timer(ctx, seq, ctx.clock.time() + seconds)


def sleep_until(deadline: datetime) -> Coroutine[Any, Any, None]:
    """Sleep durably until ``deadline`` (an aware ``datetime``)."""
    if not isinstance(deadline, datetime):
        raise InvalidConfiguration(f"sleep_until needs a datetime, not "
                                   f"{type(deadline).__name__}")
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise InvalidConfiguration("sleep_until needs an aware datetime (with a tzinfo); a "
                                   "naive one is ambiguous across machines")
    ctx = current("perdure.sleep_until()")
    seq = ctx.take_seq()
    return _timer(ctx, seq, deadline.timestamp())


async def _timer(ctx: RunContext, seq: int, due: float) -> None:
    entry = ctx.recorded(seq, "sleep", "sleep")
    if entry is not None:
        ctx.replay_cancel(entry)
        if entry.status == "completed":
            return
        due = entry.due_at if entry.due_at is not None else due
        started = entry.started_at
    else:
        await ctx.deliver_cancel(seq, "sleep", "sleep")
        started = ctx.clock.time()
        # The due time goes to the journal first: a replay (after a crash or a park) reads it.
        await ctx.write(JournalEntry(seq, "sleep", "sleep", "waiting", 0, due_at=due,
                                     started_at=started))
    await ctx.wait_until(due, f"sleep until {datetime.fromtimestamp(due).isoformat()}")
    await ctx.deliver_cancel(seq, "sleep", "sleep")
    # Queued, not awaited: a fired timer needs no fsync of its own (replay would see the due
    # time passed anyway); it commits with the run's next write and reads well in the journal.
    ctx.write_nowait(JournalEntry(seq, "sleep", "sleep", "completed", 1, due_at=due,
                                  started_at=started, finished_at=ctx.clock.time()))


# -- signals --------------------------------------------------------------------------------

def wait_for_signal(name: str, timeout: timedelta | float | None = None, *,
                    payload_type: Any = Any) -> Coroutine[Any, Any, Any]:
    """Wait durably for the next signal called ``name`` and return its payload.

    Signals are buffered: one sent before the workflow waits is delivered when it waits, in
    send order, each exactly once. Raises ``SignalTimeout`` after ``timeout``. The payload is
    decoded as ``payload_type`` when given.
    """
    if not isinstance(name, str) or not name:
        raise InvalidConfiguration(f"a signal name must be a non-empty string, not {name!r}")
    seconds = None if timeout is None else _seconds(timeout, "signal timeout")
    ctx = current("perdure.wait_for_signal()")
    seq = ctx.take_seq()
    return _signal(ctx, seq, name, seconds, payload_type)


async def _signal(ctx: RunContext, seq: int, name: str, timeout: float | None,
                  payload_type: Any) -> Any:
    entry = ctx.recorded(seq, "signal", name)
    due: float | None = None
    if entry is not None:
        ctx.replay_cancel(entry)
        if entry.status == "completed":
            return codec.loads(entry.output or "null", payload_type)
        if entry.status == "failed":
            raise SignalTimeout(f"no signal {name!r} arrived in time")
        due = entry.due_at
    else:
        await ctx.deliver_cancel(seq, "signal", name)
        if timeout is not None:
            due = ctx.clock.time() + timeout
            await ctx.write(JournalEntry(seq, "signal", name, "waiting", 0, due_at=due,
                                         started_at=ctx.clock.time()))
    while True:
        mark = ctx.mark()
        await ctx.deliver_cancel(seq, "signal", name)
        await ctx.flush()
        payload = await ctx.guard(ctx.store.consume_signal(
            ctx.run_id, ctx.epoch, ctx.worker, seq=seq, name=name, now=ctx.clock.time()))
        if payload is not None:
            return codec.loads(payload, payload_type)
        if due is not None and ctx.clock.time() >= due:
            await ctx.write(JournalEntry(seq, "signal", name, "failed", 0,
                                         error=ErrorInfo("perdure.errors.SignalTimeout",
                                                         f"no signal {name!r}").to_json(),
                                         due_at=due, finished_at=ctx.clock.time()))
            raise SignalTimeout(f"no signal {name!r} arrived in time")
        await ctx.pause(due, (f"signal:{name}",), f"waiting for signal {name!r}", linger=True,
                        mark=mark)


# -- child workflows ------------------------------------------------------------------------

class ChildHandle(Generic[R]):
    """A child run started by a workflow; ``await child.result()`` waits for it durably."""

    def __init__(self, run_id: str, workflow: Workflow[Any, R]) -> None:
        self.id = run_id
        self.workflow = workflow

    def result(self) -> Coroutine[Any, Any, R]:
        """Wait durably for the child's result; raises ``ChildFailed`` if it failed or was
        cancelled."""
        ctx = current("child.result()")
        seq = ctx.take_seq()
        return _join(ctx, seq, self)

    def __repr__(self) -> str:
        return f"<ChildHandle {self.id!r}>"


def start_child(wf: Workflow[Any, R], *args: Any, id: str | None = None,
                **kwargs: Any) -> Coroutine[Any, Any, ChildHandle[R]]:
    """Start a child workflow run, exactly once for this point of the parent.

    Its id defaults to the parent's id and this call's sequence number. The child must be
    registered on the engine; its failure surfaces as ``ChildFailed`` from ``result()``, and
    cancelling the parent cancels it.
    """
    ctx = current("perdure.start_child()")
    name = getattr(wf, "name", None)
    if not isinstance(wf, Workflow) or ctx.registry.get(name) is not wf:  # type: ignore[arg-type]
        raise UnknownWorkflowError(
            f"child workflow {wf!r} is not registered on this engine; pass it in "
            "Engine(..., workflows=[...])")
    if id is not None and (not isinstance(id, str) or not id):
        raise InvalidConfiguration(f"a child run id must be a non-empty string, not {id!r}")
    seq = ctx.take_seq()
    return _start_child(ctx, seq, wf, args, kwargs, id)


async def _start_child(ctx: RunContext, seq: int, wf: Workflow[Any, R], args: tuple[Any, ...],
                       kwargs: dict[str, Any], child_id: str | None) -> ChildHandle[R]:
    entry = ctx.recorded(seq, "child", wf.name)
    if entry is not None:
        ctx.replay_cancel(entry)
        return ChildHandle(json.loads(entry.output or "null"), wf)
    await ctx.deliver_cancel(seq, "child", wf.name)
    text = wf.codec.encode_args(args, kwargs)
    child_id = child_id or f"{ctx.run_id}/{seq}"
    await ctx.flush()
    await ctx.guard(ctx.store.start_child(
        ctx.run_id, ctx.epoch, ctx.worker,
        JournalEntry(seq, "child", wf.name, "completed", 1, json.dumps(child_id),
                     finished_at=ctx.clock.time()),
        NewRun(child_id, wf.name, wf.version, text, ctx.clock.time(), parent_id=ctx.run_id,
               parent_seq=seq)))
    ctx.notify()
    return ChildHandle(child_id, wf)


async def _join(ctx: RunContext, seq: int, child: ChildHandle[R]) -> R:
    entry = ctx.recorded(seq, "join", child.id)
    if entry is None:
        while True:
            mark = ctx.mark()
            await ctx.deliver_cancel(seq, "join", child.id)
            row = await ctx.store.get_run(child.id)
            if row is not None and RunStatus(row.status).terminal:
                entry = JournalEntry(seq, "join", child.id, "completed" if row.status ==
                                     RunStatus.COMPLETED else "failed", 1, row.output,
                                     row.error if row.status != RunStatus.CANCELLED else
                                     _cancelled_error(row.error), finished_at=ctx.clock.time())
                await ctx.write(entry)
                break
            await ctx.pause(None, (f"child:{child.id}",), f"waiting for child {child.id!r}",
                            linger=True, mark=mark)
    ctx.replay_cancel(entry)
    if entry.status == "completed":
        return cast(R, child.workflow.codec.decode_result(entry.output or "null"))
    info = entry.error_info or ErrorInfo("Error", "unknown")
    raise ChildFailed(child.id, cause_type=info.type, cause_message=info.message,
                      cause_traceback=info.traceback)


def _cancelled_error(error: str | None) -> str:
    info = ErrorInfo.from_json(error)
    message = info.message if info is not None else "cancelled"
    return ErrorInfo("perdure.errors.RunCancelled", f"the child was cancelled: {message}",
                     info.traceback if info else "").to_json()


# -- parallel -------------------------------------------------------------------------------

@overload
async def gather(a: Awaitable[T], /) -> tuple[T]: ...
@overload
async def gather(a: Awaitable[T], b: Awaitable[R], /) -> tuple[T, R]: ...
@overload
async def gather(*aws: Awaitable[Any]) -> tuple[Any, ...]: ...


async def gather(*aws: Awaitable[Any]) -> tuple[Any, ...]:
    """Run durable operations concurrently and return their results in argument order.

    The operations were numbered when called, so replay matches them one to one: the
    journaled ones return at once and only the missing ones execute. Like
    ``asyncio.gather``, the first error propagates — but only after every operation finished
    and was journaled, and "first" means first in argument order, so a replay raises the same
    one. If some operations must wait long, the run parks once for all of them.
    """
    ctx = current("perdure.gather()")
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    stops = [o for o in outcomes if isinstance(o, Stop)]
    hard = [s for s in stops if not isinstance(s, Suspend)]
    if hard:
        ctx.halt(hard[0])
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Stop):
            raise outcome
    if stops:
        # Every branch that could finish has been journaled; park once for the rest. The
        # context remembered the first branch's stop: replace it with the combined one.
        ctx.stop = None
        ctx.halt(Suspend.combine([s for s in stops if isinstance(s, Suspend)]))
    return tuple(outcomes)
