"""Concurrent tool calls numbered in a deterministic order.

The SDK runs the function calls of one model response concurrently; each tool's step takes its
sequence number when it is called, which would follow the tasks' scheduling. So each model
response registers its function calls in the order the model listed them, and a tool call takes
its step's number only in its turn: the numbering is the response's order on every replay,
while the tools themselves still run concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any
from weakref import WeakKeyDictionary

from agents.items import ModelResponse
from openai.types.responses import ResponseFunctionToolCall

from perdure.workflow.scope import StepCaller, active_run

__all__ = ["expect_tool_calls", "in_turn"]


class _Turns:
    def __init__(self) -> None:
        self.pending: list[str] = []
        self.changed = asyncio.Condition()


_turns: WeakKeyDictionary[StepCaller, _Turns] = WeakKeyDictionary()


def _state() -> _Turns | None:
    run = active_run.get()
    if run is None:
        return None
    state = _turns.get(run)
    if state is None:
        state = _turns[run] = _Turns()
    return state


def expect_tool_calls(response: ModelResponse) -> None:
    """Register the function calls of ``response``, in the model's order."""
    state = _state()
    if state is None:
        return
    state.pending = [item.call_id for item in response.output
                     if isinstance(item, ResponseFunctionToolCall)]


async def in_turn(call_id: str, call: Any) -> Any:
    """Call ``call()`` (which takes a step's number and returns its coroutine) in the turn of
    ``call_id``, then await it."""
    state = _state()
    if state is None or call_id not in state.pending:
        coro: Coroutine[Any, Any, Any] = call()
        return await coro
    async with state.changed:
        await state.changed.wait_for(lambda: state.pending[0] == call_id)
        coro = call()  # the number is taken here, synchronously
        state.pending.pop(0)
        state.changed.notify_all()
    return await coro
