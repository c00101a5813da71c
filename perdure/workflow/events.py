"""Published state: a workflow sets named events that clients read while and after it runs.

An event is last-writer-wins per key. Each set is a journal entry written in the same
transaction as the key's current value, so a replay (which finds the entry) never writes it
again: a reader never sees an older value come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from perdure.codec import functions as codec
from perdure.errors import NotInWorkflow
from perdure.records import JournalEntry
from perdure.workflow.context import RunContext, current
from perdure.workflow.scope import active_step
from perdure.workflow.talk import check_name

__all__ = ["set_event"]


def set_event(key: str, value: Any) -> Coroutine[Any, Any, None]:
    """Publish ``value`` under ``key`` for clients: ``handle.get_event(key)`` returns the
    latest value set, waiting (pushed, not polled) until the key exists; ``handle.events()``
    returns them all.

    Journaled: a replay does not set it again. ``key`` must be a non-empty string (no NUL);
    a value the codec cannot encode raises ``SerializationError`` here, and nothing is
    written. Call it from the workflow, not from inside a step (steps may run twice).
    """
    check_name("an event key", key)
    if active_step.get() is not None:
        raise NotInWorkflow("perdure.set_event() is called from the workflow, not from "
                            "inside a step (a step may run more than once)")
    text = codec.dumps(value)
    ctx = current("perdure.set_event()")
    seq = ctx.take_seq()
    return _set_event(ctx, seq, key, text)


async def _set_event(ctx: RunContext, seq: int, key: str, text: str) -> None:
    if ctx.recorded(seq, "event", key) is not None:
        return
    ctx.begin_op()
    try:
        # Stored like every payload: size limit, the engine's codec (encryption), offload.
        text = await ctx.store_payload(text, f"event {key!r}")
        await ctx.flush()  # what the run journaled before is durable before it is published
        now = ctx.clock.time()
        await ctx.guard(lambda: ctx.store.set_event(
            ctx.run_id, ctx.epoch, ctx.worker,
            JournalEntry(seq, "event", key, "completed", 1, text, finished_at=now),
            key=key, value=text, now=now))
        ctx.recovered = False
    finally:
        ctx.end_op()
    ctx.published(ctx.run_id)
    # The write may have committed inline, without yielding (SQLite): give the loop a turn,
    # so that readers in this process (and the heartbeat) run while a workflow publishes in
    # a tight loop.
    await asyncio.sleep(0)
