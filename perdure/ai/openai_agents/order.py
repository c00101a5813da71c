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

from agents import FunctionTool
from agents.items import ModelResponse
from openai.types.responses import ResponseFunctionToolCall

from perdure.workflow.scope import StepCaller, active_run

__all__ = ["STEP_MARK", "expect_tool_calls", "in_turn"]

#: the attribute that marks the invoker of a function tool that runs as a step
STEP_MARK = "perdure_step"


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


def expect_tool_calls(response: ModelResponse, tools: object) -> None:
    """Register the calls of ``response`` to durable function tools (of ``tools``, the tools
    the model was offered), in the model's order. Calls of anything else (a handoff, a tool run
    inline) take no step and are not waited for."""
    state = _state()
    if state is None:
        return
    durable = {t.name for t in tools if isinstance(t, FunctionTool)
               and getattr(t.on_invoke_tool, STEP_MARK, False)} \
        if isinstance(tools, list) else set()
    state.pending = [item.call_id for item in response.output
                     if isinstance(item, ResponseFunctionToolCall) and item.name in durable]


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
