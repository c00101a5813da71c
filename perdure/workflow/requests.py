"""Requests into a run: a client asks a question and waits; the workflow answers it once.

A client's ``handle.request(name, payload)`` buffers a request row (like a signal) and waits
for its reply. The workflow takes the oldest pending request of that name with
:func:`wait_for_request` (journaled in the same transaction that marks the request taken) and
answers with ``await req.reply(value)`` (journaled in the same transaction that stores the
reply on the request row). The reply is in the database before the worker goes on, so it
reaches the caller even if the worker dies right after; a replay finds the journal entry and
never answers twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, Generic, TypeVar

from perdure.codec import functions as codec
from perdure.errors import NotInWorkflow, PerdureError, RequestTimeout
from perdure.records import ErrorInfo, JournalEntry
from perdure.workflow.context import RunContext, current
from perdure.workflow.scope import active_step
from perdure.workflow.talk import check_name
from perdure.workflow.timers import seconds

__all__ = ["Request", "wait_for_request"]

T = TypeVar("T")


class Request(Generic[T]):
    """A request a workflow took with :func:`wait_for_request`: its ``payload``, and the means
    to answer it once (``reply`` or ``reject``)."""

    def __init__(self, ctx: RunContext, request_id: str, name: str, payload: T) -> None:
        self._ctx = ctx
        self.id = request_id
        self.name = name
        self.payload = payload

    def __repr__(self) -> str:
        return f"<Request {self.name!r} id={self.id!r}>"

    @property
    def answered(self) -> bool:
        """Whether this run already replied to (or rejected) the request."""
        return self.id in self._ctx.talk.replied

    def reply(self, value: Any = None) -> Coroutine[Any, Any, None]:
        """Answer the request with ``value``: the caller's ``handle.request`` returns it.

        Journaled together with the reply, so the caller gets it even if this worker dies
        right after, and a replay does not answer again. A second answer raises
        ``PerdureError``; a value the codec cannot encode raises ``SerializationError``; both
        at the call, writing nothing.
        """
        ctx = self._answering("req.reply()")
        text = codec.dumps(value)
        seq = ctx.take_seq()
        ctx.talk.replied.add(self.id)
        output = json.dumps({"id": self.id}, separators=(",", ":"))[:-1] + f',"reply":{text}}}'
        return _answer(ctx, seq, self, output, text, None)

    def reject(self, reason: str) -> Coroutine[Any, Any, None]:
        """Refuse the request: the caller's ``handle.request`` raises ``RequestRejected``
        with ``reason``. Journaled like :meth:`reply`."""
        ctx = self._answering("req.reject()")
        if not isinstance(reason, str):
            raise PerdureError(f"a rejection's reason is a string, not {type(reason).__name__}")
        seq = ctx.take_seq()
        ctx.talk.replied.add(self.id)
        output = json.dumps({"id": self.id, "rejected": reason}, separators=(",", ":"))
        return _answer(ctx, seq, self, output, None, reason)

    def _answering(self, what: str) -> RunContext:
        if active_step.get() is not None:
            raise NotInWorkflow(f"{what} is called from the workflow, not from inside a step")
        ctx = current(what)
        if ctx is not self._ctx:
            raise NotInWorkflow(f"request {self.id!r} was taken by run {self._ctx.run_id!r}")
        if self.answered:
            raise PerdureError(f"request {self.name!r} ({self.id!r}) was already answered; a "
                               "request gets one reply")
        return ctx


def wait_for_request(name: str, timeout: timedelta | float | None = None, *,
                     payload_type: Any = Any) -> Coroutine[Any, Any, Request[Any]]:
    """Wait durably for the next request called ``name`` (sent by ``handle.request``) and
    return it; answer it with ``await req.reply(value)``.

    Requests are buffered in send order: one sent before the workflow waits is taken when it
    waits, each by one wait. A long wait parks the run. Raises ``RequestTimeout`` after
    ``timeout``. The payload is decoded as ``payload_type`` when given.
    """
    check_name("a request name", name)
    limit = None if timeout is None else seconds(timeout, "request timeout")
    ctx = current("perdure.wait_for_request()")
    seq = ctx.take_seq()
    return _take(ctx, seq, name, limit, payload_type)


async def _take(ctx: RunContext, seq: int, name: str, timeout: float | None,
                payload_type: Any) -> Request[Any]:
    entry = ctx.recorded(seq, "request", name)
    due: float | None = None
    if entry is not None:
        ctx.replay_cancel(entry)
        if entry.status == "completed":
            return _request(ctx, name, entry.output or "{}", payload_type)
        if entry.status == "failed":
            raise RequestTimeout(f"no request {name!r} arrived in time")
        due = entry.due_at
    else:
        await ctx.deliver_cancel(seq, "request", name)
        if timeout is not None:
            due = ctx.clock.time() + timeout
            await ctx.write(JournalEntry(seq, "request", name, "waiting", 0, due_at=due,
                                         started_at=ctx.clock.time()))
    while True:
        mark = ctx.mark()
        await ctx.deliver_cancel(seq, "request", name)
        await ctx.flush()
        output = await ctx.guard(lambda: ctx.store.consume_request(
            ctx.run_id, ctx.epoch, ctx.worker, seq=seq, name=name, now=ctx.clock.time()))
        if output is not None:
            ctx.recovered = False
            return _request(ctx, name, output, payload_type)
        if due is not None and ctx.clock.time() >= due:
            await ctx.write(JournalEntry(seq, "request", name, "failed", 0,
                                         error=ErrorInfo("perdure.errors.RequestTimeout",
                                                         f"no request {name!r}").to_json(),
                                         due_at=due, finished_at=ctx.clock.time()))
            raise RequestTimeout(f"no request {name!r} arrived in time")
        await ctx.pause(due, (f"request:{name}",), f"waiting for request {name!r}",
                        linger=True, mark=mark)


def _request(ctx: RunContext, name: str, output: str, payload_type: Any) -> Request[Any]:
    data = json.loads(output)
    return Request(ctx, str(data["id"]), name, codec.decode(data.get("payload"), payload_type))


async def _answer(ctx: RunContext, seq: int, req: Request[Any], output: str,
                  reply: str | None, error: str | None) -> None:
    if ctx.recorded(seq, "reply", req.name) is not None:
        return
    ctx.begin_op()
    try:
        await ctx.flush()
        now = ctx.clock.time()
        await ctx.guard(lambda: ctx.store.reply_request(
            ctx.run_id, ctx.epoch, ctx.worker,
            JournalEntry(seq, "reply", req.name, "completed", 1, output, finished_at=now),
            request_id=req.id, reply=reply, error=error, now=now))
        ctx.recovered = False
    finally:
        ctx.end_op()
    ctx.published(ctx.run_id)
    # The write may have committed inline, without yielding (SQLite): give the loop a turn,
    # so that readers in this process (and the heartbeat) run while a workflow publishes in
    # a tight loop.
    await asyncio.sleep(0)
