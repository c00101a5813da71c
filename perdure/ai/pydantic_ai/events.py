"""Agent events into a Perdure stream: written from the workflow, so each exactly once.

The agent's events (the parts and deltas of each model response, each tool call and its
result) reach the workflow after the step that produced them is journaled: on a replay the
same events come back from the journal in the same order, and the stream's own journal entries
make the writes of a replay no-ops. A reader therefore sees every event once, in order, across
crashes; it sees a model response's deltas when its step has completed (not while the model is
still generating: a step may be retried, and what it streamed before would be shown twice).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai.messages import AgentStreamEvent
from pydantic_ai.tools import RunContext

from perdure.workflow.scope import active_step
from perdure.workflow.streams import append_from_step, stream
from perdure.workflow.values import step_key

__all__ = ["EventWriter", "LiveWriter", "event_data"]

_EVENTS: TypeAdapter[Any] = TypeAdapter(AgentStreamEvent)


def event_data(event: AgentStreamEvent) -> Any:
    """The JSON form of an agent event, as stream readers get it (``event_kind`` tells which)."""
    return _EVENTS.dump_python(event, mode="json")


class EventWriter:
    """Writes a run's agent events to the Perdure stream ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def write(self, event: AgentStreamEvent) -> None:
        await stream(self.name).write(event_data(event))


class LiveWriter:
    """Writes the events of a streamed model request, live, from inside its step, to the
    stream ``name`` (at least once: see ``PerdureDurability``'s ``live_stream``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]
                       ) -> None:
        scope = active_step.get()
        if scope is None:  # not in a model request's step: nothing is streamed live
            async for _ in events:
                pass
            return
        await append_from_step(self.name, {
            "event_kind": "model_request_start", "key": step_key(), "attempt": scope.attempt})
        async for event in events:
            await append_from_step(self.name, event_data(event))
