"""Callbacks (awakeables): an opaque token the world completes to resume a waiting run.

``cb = await perdure.callback()`` makes a token from ``secrets`` (unguessable) and journals it
together with its row, so a replay returns the same token and never makes a second one. The
workflow hands the token out (from a step: an e-mail link, a webhook URL), then parks in
``await cb.wait()``. ``engine.complete_callback(token, value)`` (or ``fail_callback``) from any
process completes it once; a second completion raises ``CallbackAlreadyCompleted``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, Generic, TypeVar

from perdure.codec import functions as codec
from perdure.errors import CallbackFailed, CallbackTimeout, NotInWorkflow
from perdure.records import ErrorInfo, JournalEntry
from perdure.workflow.context import RunContext, current
from perdure.workflow.scope import active_step
from perdure.workflow.timers import seconds

__all__ = ["Callback", "callback"]

T = TypeVar("T")

_TIMEOUT = "perdure.errors.CallbackTimeout"


class Callback(Generic[T]):
    """A callback token of a run (see :func:`perdure.callback`)."""

    def __init__(self, run_id: str, seq: int, token: str) -> None:
        self.run_id = run_id
        self.seq = seq
        #: give this to whoever completes the callback (``engine.complete_callback(token,
        #: value)``); it is unguessable and single-use
        self.token = token

    def __repr__(self) -> str:
        return f"<Callback of run {self.run_id!r} at seq {self.seq}>"  # not the secret

    def wait(self, timeout: timedelta | float | None = None, *,
             value_type: Any = Any) -> Coroutine[Any, Any, T]:
        """Wait durably until the callback is completed and return its value (decoded as
        ``value_type`` when given); a long wait parks the run.

        Raises ``CallbackFailed`` if it was failed (``engine.fail_callback``) and
        ``CallbackTimeout`` after ``timeout``.
        """
        limit = None if timeout is None else seconds(timeout, "callback timeout")
        ctx = current("cb.wait()")
        if ctx.run_id != self.run_id:
            raise NotInWorkflow(f"this callback belongs to run {self.run_id!r}")
        seq = ctx.take_seq()
        return _wait(ctx, seq, self, limit, value_type)


def callback() -> Coroutine[Any, Any, Callback[Any]]:
    """Make a callback token for this run: ``cb.token`` is an unguessable, single-use string
    to hand to the outside world (from a step); ``await cb.wait()`` parks the run until
    ``engine.complete_callback(cb.token, value)`` or ``engine.fail_callback(cb.token, error)``
    is called from any process. Journaled: a replay returns the same token."""
    if active_step.get() is not None:
        raise NotInWorkflow("perdure.callback() is called from the workflow, not from inside a "
                            "step (a step may run more than once)")
    ctx = current("perdure.callback()")
    seq = ctx.take_seq()
    return _create(ctx, seq)


async def _create(ctx: RunContext, seq: int) -> Callback[Any]:
    entry = ctx.recorded(seq, "callback", "callback")
    if entry is not None:
        return Callback(ctx.run_id, seq, json.loads(entry.output or '""'))
    token = secrets.token_urlsafe(32)
    ctx.begin_op()
    try:
        await ctx.flush()
        now = ctx.clock.time()
        await ctx.guard(lambda: ctx.store.create_callback(
            ctx.run_id, ctx.epoch, ctx.worker,
            JournalEntry(seq, "callback", "callback", "completed", 1, json.dumps(token),
                         finished_at=now),
            token=token, now=now))
        ctx.recovered = False
    finally:
        ctx.end_op()
    return Callback(ctx.run_id, seq, token)


async def _wait(ctx: RunContext, seq: int, cb: Callback[Any], timeout: float | None,
                value_type: Any) -> Any:
    entry = ctx.recorded(seq, "callback_wait", "callback")
    due: float | None = None
    if entry is not None:
        ctx.replay_cancel(entry)
        if entry.status in ("completed", "failed"):
            return _outcome(entry, value_type)
        due = entry.due_at
    else:
        await ctx.deliver_cancel(seq, "callback_wait", "callback")
        if timeout is not None:
            due = ctx.clock.time() + timeout
            await ctx.write(JournalEntry(seq, "callback_wait", "callback", "waiting", 0,
                                         due_at=due, started_at=ctx.clock.time()))
    while True:
        mark = ctx.mark()
        await ctx.deliver_cancel(seq, "callback_wait", "callback")
        state = await ctx.store.callback_state(cb.token)
        if state is not None and state.completed:
            # The callback's row never changes once completed: journaling what it holds now
            # is what every later replay must see.
            entry = JournalEntry(seq, "callback_wait", "callback",
                                 "failed" if state.error is not None else "completed", 1,
                                 state.value, state.error, due_at=due,
                                 finished_at=ctx.clock.time())
            await ctx.write(entry)
            return _outcome(entry, value_type)
        if due is not None and ctx.clock.time() >= due:
            entry = JournalEntry(seq, "callback_wait", "callback", "failed", 0,
                                 error=ErrorInfo(_TIMEOUT, "the callback was not completed in "
                                                 "time").to_json(),
                                 due_at=due, finished_at=ctx.clock.time())
            await ctx.write(entry)
            return _outcome(entry, value_type)
        await ctx.pause(due, (f"callback:{cb.seq}",), "waiting for a callback", linger=True,
                        mark=mark)


def _outcome(entry: JournalEntry, value_type: Any) -> Any:
    if entry.status == "completed":
        return codec.loads(entry.output or "null", value_type)
    info = entry.error_info or ErrorInfo("Error", "unknown")
    if info.type == _TIMEOUT:
        raise CallbackTimeout(info.message)
    raise CallbackFailed(cause_type=info.type, cause_message=info.message,
                         cause_traceback=info.traceback)
