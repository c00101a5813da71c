"""Durable signals: a run waits for a named message that clients send it.

Signals are buffered as rows: one sent before the workflow waits is delivered when it waits,
in send order, each exactly once.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Awaitable, Coroutine
from datetime import timedelta
from typing import Any

from perdure import validate
from perdure.codec import functions as codec
from perdure.errors import SignalTimeout
from perdure.records import ErrorInfo, JournalEntry
from perdure.workflow.context import RunContext, current
from perdure.workflow.timers import seconds

__all__ = ["wait_for_signal"]


def wait_for_signal(name: str, timeout: timedelta | float | None = None, *,
                    payload_type: Any = Any) -> Coroutine[Any, Any, Any]:
    """Wait durably for the next signal called ``name`` and return its payload.

    Signals are buffered: one sent before the workflow waits is delivered when it waits, in
    send order, each exactly once. Raises ``SignalTimeout`` after ``timeout``. The payload is
    decoded as ``payload_type`` when given.
    """
    validate.name(name, "a signal name")
    limit = None if timeout is None else seconds(timeout, "signal timeout")
    ctx = current("perdure.wait_for_signal()")
    seq = ctx.take_seq()
    return _signal(ctx, seq, name, limit, payload_type)


async def _signal(ctx: RunContext, seq: int, name: str, timeout: float | None,
                  payload_type: Any) -> Any:
    entry = ctx.recorded(seq, "signal", name)
    due: float | None = None
    if entry is not None:
        ctx.replay_cancel(entry)
        if entry.status == "completed":
            text = await ctx.load_payload(entry.output, f"the payload of signal {name!r}")
            return codec.loads(text or "null", payload_type)
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
        payload = await ctx.guard(functools.partial(_consume, ctx, seq, name, itertools.count()))
        if payload is not None:
            text = await ctx.load_payload(payload, f"the payload of signal {name!r}")
            return codec.loads(text or "null", payload_type)
        if due is not None and ctx.clock.time() >= due:
            await ctx.write(JournalEntry(seq, "signal", name, "failed", 0,
                                         error=ErrorInfo("perdure.errors.SignalTimeout",
                                                         f"no signal {name!r}").to_json(),
                                         due_at=due, finished_at=ctx.clock.time()))
            raise SignalTimeout(f"no signal {name!r} arrived in time")
        await ctx.pause(due, (f"signal:{name}",), f"waiting for signal {name!r}", linger=True,
                        mark=mark)


def _consume(ctx: RunContext, seq: int, name: str, attempts: itertools.count[int]
             ) -> Awaitable[str | None]:
    # A retry (the first attempt's outcome is unknown) returns the signal an earlier attempt
    # consumed at ``seq``, if it committed, instead of taking the next one.
    return ctx.store.consume_signal(ctx.run_id, ctx.epoch, ctx.worker, seq=seq, name=name,
                                    now=ctx.clock.time(), retry=next(attempts) > 0)
