"""``durable(agent)``: the agent with its model calls and function tools as Perdure steps.

The agent is cloned (the original stays as it is): its model, if it is a ``Model`` instance, is
wrapped in :class:`~perdure.ai.openai_agents.models.DurableModel` (a model named by a string
goes through the run's ``model_provider``: pass a ``PerdureModelProvider``); each
``FunctionTool`` becomes a step named ``openai_agents__{agent}.tool:{tool}``, unless
``tools={name: False}`` opts it out; and each handoff target is made durable the same way, so
a run stays durable after a handoff.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from agents import Agent, FunctionTool, Handoff
from agents.models.interface import Model
from agents.tool_context import ToolContext

from perdure.ai.openai_agents.models import DurableModel
from perdure.ai.openai_agents.order import STEP_MARK, in_turn
from perdure.ai.openai_agents.runtime import in_workflow, step_for

__all__ = ["durable"]


def durable(agent: Agent[Any], *, tools: Mapping[str, bool] | None = None,
            attempts: int | None = None, _done: dict[int, Agent[Any]] | None = None
            ) -> Agent[Any]:
    """A durable clone of ``agent`` and of every agent it hands off to (see the module).

    ``tools`` maps a tool name to ``False`` to run that tool inline rather than as a step;
    ``attempts`` bounds every step's attempts (Perdure's default retry policy otherwise).
    """
    done = {} if _done is None else _done
    if id(agent) in done:
        return done[id(agent)]
    clone = agent.clone()
    done[id(agent)] = clone  # before the handoffs: agents may hand off to each other
    opted = dict(tools or {})
    if isinstance(agent.model, Model) and not isinstance(agent.model, DurableModel):
        clone.model = DurableModel(agent.model, f"openai_agents__{agent.name}.model")
    clone.tools = [_tool(agent.name, t, attempts) if isinstance(t, FunctionTool)
                   and opted.get(t.name, True) else t for t in agent.tools]
    clone.handoffs = [_handoff(h, opted, attempts, done) for h in agent.handoffs]
    return clone


def _tool(agent: str, tool: FunctionTool, attempts: int | None) -> FunctionTool:
    invoke = tool.on_invoke_tool
    step = step_for(f"openai_agents__{agent}.tool:{tool.name}", attempts)

    async def on_invoke(ctx: ToolContext[Any], arguments: str) -> Any:
        if not in_workflow():
            return await invoke(ctx, arguments)

        async def call() -> Any:
            return await invoke(ctx, arguments)

        return await in_turn(ctx.tool_call_id, lambda: step(call))

    setattr(on_invoke, STEP_MARK, True)
    wrapped = copy.copy(tool)
    wrapped.on_invoke_tool = on_invoke
    return wrapped


def _handoff(target: Agent[Any] | Handoff[Any, Any], opted: Mapping[str, bool],
             attempts: int | None, done: dict[int, Agent[Any]]) -> Any:
    if isinstance(target, Agent):
        return durable(target, tools=opted, attempts=attempts, _done=done)
    invoke = target.on_invoke_handoff

    async def on_invoke(ctx: Any, arguments: str) -> Any:
        agent = await invoke(ctx, arguments)
        return durable(agent, tools=opted, attempts=attempts, _done=done)

    wrapped = copy.copy(target)
    wrapped.on_invoke_handoff = on_invoke
    return wrapped
