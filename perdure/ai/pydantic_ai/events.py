"""Agent events into a Perdure stream: written from the workflow, so each exactly once.

The agent's events (the parts and deltas of each model response, each tool call and its
result) reach the workflow after the step that produced them is journaled: on a replay the
same events come back from the journal in the same order, and the stream's own journal entries
make the writes of a replay no-ops. A reader therefore sees every event once, in order, across
crashes; it sees a model response's deltas when its step has completed (not while the model is
still generating: a step may be retried, and what it streamed before would be shown twice).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic_ai.messages import AgentStreamEvent

from perdure.workflow.streams import stream

__all__ = ["EventWriter", "event_data"]

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
