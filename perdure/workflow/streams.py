"""Durable streams: ordered items a workflow writes and clients read live, from any offset.

Each write takes the next position of its stream at call time (so concurrent writes are
numbered in call order on every replay) and commits its journal entry and the item together;
a replay finds the entry and writes nothing, so no reader ever sees an item twice. Closing the
stream writes an end marker at the next position: readers stop there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from perdure.codec import functions as codec
from perdure.errors import NotInWorkflow, StreamClosed
from perdure.records import JournalEntry
from perdure.workflow.context import RunContext, current
from perdure.workflow.scope import active_step
from perdure.workflow.stops import Blocked
from perdure.workflow.talk import StreamState, check_name

__all__ = ["Stream", "append_from_step", "stream"]


def stream(name: str) -> Stream:
    """The run's stream ``name``, to write items that clients read with
    ``handle.read_stream(name)``.

    Use it as ``async with perdure.stream("tokens") as out: await out.write(item)``: leaving
    the block closes the stream (also when it raises), and readers then stop. Without the
    block, ``await out.close()`` closes it; a stream never closed ends for readers when the
    run finishes. Opening or writing a closed stream raises ``StreamClosed``.
    """
    check_name("a stream name", name)
    ctx = _workflow_context("perdure.stream()")
    state = ctx.talk.stream(name)
    if state.closed:
        raise StreamClosed(name)
    return Stream(ctx, name, state)


class Stream:
    """A durable, ordered stream of one run (see :func:`perdure.stream`)."""

    def __init__(self, ctx: RunContext, name: str, state: StreamState) -> None:
        self._ctx = ctx
        self._state = state
        self.name = name

    def __repr__(self) -> str:
        return f"<Stream {self.name!r} of run {self._ctx.run_id!r}>"

    @property
    def closed(self) -> bool:
        """Whether the stream is closed (nothing more can be written)."""
        return self._state.closed

    def write(self, item: Any) -> Coroutine[Any, Any, int]:
        """Append ``item`` (anything the codec encodes) and return its position.

        Journaled together with the item: a replay writes nothing. Raises ``StreamClosed``
        after the stream was closed and ``SerializationError`` for an item that cannot be
        encoded, at the call, writing nothing.
        """
        ctx = self._check("write()")
        text = codec.dumps(item)
        seq = ctx.take_seq()
        position = self._state.position
        self._state.position += 1
        return _write(ctx, seq, "stream", self.name, position, text)

    def close(self) -> Coroutine[Any, Any, None]:
        """Close the stream: readers stop after the items written so far. Closing a closed
        stream does nothing."""
        ctx = _workflow_context("stream.close()")
        if self._state.closed:
            return _nothing()
        seq = ctx.take_seq()
        position = self._state.position
        self._state.closed = True  # at the call: a write made after close() raises at once
        return _closed(ctx, seq, self.name, position)

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        # A run being stopped (parked, lost, blocked) or a task being cancelled must write
        # nothing more: only a normal exit or the workflow's own error closes the stream.
        if exc is None or isinstance(exc, Exception):
            await self.close()

    def _check(self, what: str) -> RunContext:
        ctx = _workflow_context(f"stream.{what}")
        if ctx is not self._ctx:
            raise NotInWorkflow(f"stream {self.name!r} belongs to run {self._ctx.run_id!r}")
        if self._state.closed:
            raise StreamClosed(self.name)
        return ctx


async def append_from_step(name: str, item: Any) -> int:
    """Inside a step: append ``item`` to the run's stream ``name`` at once, live, and return
    its position.

    Unlike :meth:`Stream.write` it is not journaled -- a step may run more than once, and what
    an attempt appended stays -- so a stream written this way is at-least-once, and must not
    also be written from the workflow. Fenced like every write of the run: a worker that lost
    the run appends nothing. Raises ``NotInWorkflow`` outside a step.
    """
    check_name("a stream name", name)
    scope = active_step.get()
    if scope is None:
        raise NotInWorkflow("append_from_step() is called inside a step")
    ctx = current("append_from_step()")
    text = codec.dumps(item)
    now = ctx.clock.time()
    position = await ctx.guard(lambda: ctx.store.append_stream(
        ctx.run_id, ctx.epoch, ctx.worker, stream=name, seq=scope.seq, value=text, now=now))
    ctx.published(ctx.run_id)
    return position


def _workflow_context(what: str) -> RunContext:
    if active_step.get() is not None:
        raise NotInWorkflow(f"{what} is called from the workflow, not from inside a step "
                            "(a step may run more than once)")
    return current(what)


async def _nothing() -> None:
    return None


async def _closed(ctx: RunContext, seq: int, name: str, position: int) -> None:
    await _write(ctx, seq, "stream_close", name, position, None)


async def _write(ctx: RunContext, seq: int, kind: str, name: str, position: int,
                 text: str | None) -> int:
    entry = ctx.recorded(seq, kind, name)
    if entry is not None:
        if entry.output is not None and json.loads(entry.output) != position:
            ctx.halt(Blocked(
                f"non-determinism at seq {seq}: the journal recorded position "
                f"{entry.output} of stream {name!r} but the code now writes position "
                f"{position}. Deploy the code this run started with and resume the run."))
        return position
    ctx.begin_op()
    try:
        if text is not None:  # stored like every payload: size limit, codec, offload
            text = await ctx.store_payload(text, f"item {position} of stream {name!r}")
        await ctx.flush()
        now = ctx.clock.time()
        await ctx.guard(lambda: ctx.store.write_stream(
            ctx.run_id, ctx.epoch, ctx.worker,
            JournalEntry(seq, kind, name, "completed", 1, str(position), finished_at=now),
            stream=name, position=position, value=text, now=now))
        ctx.recovered = False
    finally:
        ctx.end_op()
    ctx.published(ctx.run_id)
    # The write may have committed inline, without yielding (SQLite): give the loop a turn,
    # so that readers in this process (and the heartbeat) run while a workflow publishes in
    # a tight loop.
    await asyncio.sleep(0)
    return position
