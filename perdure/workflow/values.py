"""Values a workflow reads that differ between executions, journaled so a replay sees the same:
the time, random numbers, UUIDs, and the run's own identity."""

from __future__ import annotations

import json
import random as _random
import uuid as _uuid
from collections.abc import Callable
from datetime import UTC, datetime

from perdure.errors import NotInWorkflow
from perdure.records import JournalEntry
from perdure.workflow.context import RunContext, current
from perdure.workflow.scope import active_step

__all__ = ["now", "random", "run_id", "step_key", "uuid4"]


def _value(kind: str, make: Callable[[RunContext], str]) -> str:
    """A journaled value: recorded on first execution, the recorded one on replay."""
    ctx = current(f"perdure.{kind}()")
    seq = ctx.take_seq()
    entry = ctx.recorded(seq, kind, kind)
    if entry is not None and entry.output is not None:
        return ctx.open_payload(entry.output, f"the {kind}() value at seq {seq}")
    text = make(ctx)
    ctx.write_nowait(JournalEntry(seq, kind, kind, "completed", 1, ctx.payloads.seal(text),
                                  finished_at=ctx.clock.time()))
    return text


def now() -> datetime:
    """The current time (UTC), journaled: a replay returns the same value.

    Inside a step it is simply the current time (steps are not replayed).
    """
    if active_step.get() is not None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(float(_value("now", lambda c: repr(c.clock.time()))), UTC)


def uuid4() -> _uuid.UUID:
    """A random UUID, journaled: a replay returns the same value."""
    if active_step.get() is not None:
        return _uuid.uuid4()
    return _uuid.UUID(json.loads(_value("uuid4", lambda c: json.dumps(str(_uuid.uuid4())))))


def random() -> float:
    """A random float in [0, 1), journaled: a replay returns the same value."""
    if active_step.get() is not None:
        return _random.random()
    return float(_value("random", lambda c: repr(_random.random())))


def step_key() -> str:
    """Inside a step: a stable idempotency key for this step of this run.

    ``"RUN:SEQ"`` (run id, the step's sequence number), and ``"RUN:SEQ:gN"`` once an operator
    resumed the failed run N times. The same on every attempt and after a crash, so an
    external API that deduplicates by key (payments, e-mail) performs the side effect once
    even though the step may run again. A resume of a *failed* run starts a new generation
    because what executes again was compensated or failed: under the old key, a payment API
    would answer with the refunded charge. (A resume of a blocked run keeps the keys.)
    """
    scope = active_step.get()
    if scope is None:
        raise NotInWorkflow("perdure.step_key() can only be called inside a step")
    if scope.generation:
        return f"{scope.run_id}:{scope.seq}:g{scope.generation}"
    return f"{scope.run_id}:{scope.seq}"


def run_id() -> str:
    """The id of the run being executed (inside a workflow or one of its steps)."""
    scope = active_step.get()
    if scope is not None:
        return scope.run_id
    return current("perdure.run_id()").run_id
