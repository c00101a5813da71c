"""``perdure.emit``: a workflow publishes an event through the transactional outbox.

The event is written to the outbox table in the same transaction as the emit's journal entry,
so it exists exactly when the emit is journaled: once per durable call, never again on replay
(the journaled entry returns the event's id instead), and never from a worker that lost the run
(the write is fenced by the run's epoch like every journal write). Delivery is the publisher's
business (``Engine(outbox=sink)``), not the workflow's.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Coroutine
from typing import Any

from perdure.codec import functions as codec
from perdure.errors import InvalidConfiguration, NotInWorkflow, SerializationError
from perdure.records import JournalEntry
from perdure.storage.outbox_port import NewEvent
from perdure.workflow.context import RunContext, current
from perdure.workflow.scope import active_step

__all__ = ["MAX_LABEL", "check_label", "emit"]

#: the longest event name or key, in characters
MAX_LABEL = 255


def check_label(value: object, what: str) -> str:
    """``value`` if it is a valid event name or key, else ``InvalidConfiguration``: a
    non-empty string of at most 255 characters without control characters (it travels in
    HTTP headers and database text columns, where a NUL or a line break cannot go)."""
    if not isinstance(value, str):
        raise InvalidConfiguration(f"an event {what} must be a string, not "
                                   f"{type(value).__name__} ({value!r:.80})")
    if not value or len(value) > MAX_LABEL:
        raise InvalidConfiguration(f"an event {what} must be 1 to {MAX_LABEL} characters long, "
                                   f"not {len(value)}")
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InvalidConfiguration(f"an event {what} must not contain control characters; "
                                   f"{value!r:.80} contains {bad!r}")
    return value


def emit(name: str, payload: Any = None, *, key: str | None = None
         ) -> Coroutine[Any, Any, str]:
    """Publish event ``name`` with ``payload`` through the outbox; returns the event's id.

    Durable and exactly once per call: the event is stored with the emit's journal entry, in
    one transaction, and a replay returns the recorded id without emitting again. The engine's
    outbox sink (``Engine(outbox=...)``) delivers it later, at least once, in emit order among
    the events of the same ``key`` (events without a key are independent of each other). The
    id is stable across delivery attempts: receivers deduplicate by it. (Emits awaited
    concurrently, in one ``gather``, are concurrent: their order among themselves is the order
    in which they commit, like the emits of two runs.)

    ``payload`` is encoded as JSON by its own type (a dataclass or a pydantic model becomes an
    object of its fields, a ``datetime`` an ISO string). Raises, at the call and with nothing
    written, ``InvalidConfiguration`` for a name or key that is not a non-empty string of at
    most 255 characters without control characters, ``SerializationError`` for a payload that
    cannot be encoded, and ``NotInWorkflow`` outside a workflow or inside a step (a step may
    run more than once; emit from the workflow, after the step).
    """
    if active_step.get() is not None:
        raise NotInWorkflow("perdure.emit() is a durable operation of the workflow and cannot "
                            "be called inside a step (which may run more than once); emit "
                            "from the workflow after the step returns")
    ctx = current("perdure.emit()")
    check_label(name, "name")
    if key is not None:
        check_label(key, "key")
    try:
        text = codec.dumps(payload, type(payload))
    except SerializationError as exc:
        raise SerializationError(f"the payload of event {name!r} cannot be encoded: {exc}"
                                 ) from exc
    seq = ctx.take_seq()
    return _emit(ctx, seq, name, key, text)


async def _emit(ctx: RunContext, seq: int, name: str, key: str | None, payload: str) -> str:
    entry = ctx.recorded(seq, "emit", name)
    if entry is not None:
        event_id: str = json.loads(entry.output or "null")
        return event_id
    event_id = f"{ctx.run_id}:{seq}"
    ctx.begin_op()
    try:
        # Values the run produced before (now(), uuid4()) are journaled before an event that
        # may carry them leaves the run.
        await ctx.flush()
        now = ctx.clock.time()
        await ctx.guard(lambda: ctx.store.outbox.put_event(
            ctx.run_id, ctx.epoch, ctx.worker,
            JournalEntry(seq, "emit", name, "completed", 1, json.dumps(event_id),
                         started_at=now, finished_at=now),
            NewEvent(event_id, name, key, payload, now)))
        ctx.recovered = False
    finally:
        ctx.end_op()
    return event_id
