"""The durable agent of the AI crash tests, run in real worker processes as
``python -m perdure worker tests.crash.app_agents:AGENTS --db ...``.

A Pydantic AI agent on a ``FunctionModel`` whose answer is decided from the message history
(never from a call count, which would fall out of step on a replay): research two cities, then
book the second, a tool that needs a person's approval. Every real model call and every real
tool call goes through :func:`tests.crash.app._effect`, so the ledger counts them and the hang
points apply (``PERDURE_CRASH_HANG=research@after``, ``PERDURE_CRASH_HANG_AFTER=N``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent as OAAgent
from agents import Runner, Usage, function_tool
from agents.items import ModelResponse as OAResponse
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from perdure import Engine, workflow
from perdure.ai.openai_agents import durable
from perdure.ai.pydantic_ai import PerdureDurability, wait_for_approvals
from tests.crash.app import FAST, _effect

__all__ = ["AGENTS", "AGENT_WORKFLOWS", "agent", "scout_trip", "trip"]

CITIES = ("Paris", "Rome")


def decide(messages: list[ModelMessage]) -> ModelResponse:
    """The model's answer, from what the history holds."""
    returns = [p for m in messages for p in m.parts if p.part_kind == "tool-return"]
    researched = [p for p in returns if p.tool_name == "research"]
    booked = [p for p in returns if p.tool_name == "book"]
    if booked:
        return ModelResponse(parts=[TextPart(f"done: {booked[-1].content}")])
    if len(researched) < len(CITIES):
        city = CITIES[len(researched)]
        return ModelResponse(parts=[ToolCallPart("research", {"city": city},
                                                 tool_call_id=f"research-{city}")])
    return ModelResponse(parts=[ToolCallPart("book", {"city": CITIES[-1]},
                                             tool_call_id="book")])


async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    await _effect("model", "model")
    return decide(messages)


async def stream_model(messages: list[ModelMessage], info: AgentInfo
                       ) -> AsyncIterator[str | dict[int, DeltaToolCall]]:
    await _effect("model", "model")
    for part in decide(messages).parts:
        if isinstance(part, TextPart):
            for word in part.content.split(" "):
                yield word + " "
        elif isinstance(part, ToolCallPart):
            yield {0: DeltaToolCall(name=part.tool_name, json_args=json.dumps(part.args),
                                        tool_call_id=part.tool_call_id)}


agent = Agent(FunctionModel(model, stream_function=stream_model), name="travel",
              capabilities=[PerdureDurability(stream="events",
                                              model={"retry": FAST}, tool={"retry": FAST})])


@agent.tool_plain
async def research(city: str) -> str:
    """What the weather is like in a city."""
    key = await _effect("step", "research")
    return f"{city} is sunny (key={key})"


@agent.tool_plain(requires_approval=True)
async def book(city: str) -> str:
    """Book a trip to a city."""
    key = await _effect("step", "book")
    return f"booked {city} (key={key})"


@workflow(name="trip")
async def trip(prompt: str) -> Any:
    """Plan a trip; a booking waits for signal ``approvals``."""
    output_type: Any = [str, DeferredToolRequests]
    result = await agent.run(prompt, output_type=output_type)
    while isinstance(result.output, DeferredToolRequests):
        decisions = await wait_for_approvals(result.output)
        result = await agent.run(message_history=result.all_messages(),
                                 deferred_tool_results=decisions, output_type=output_type)
    return result.output


# -- the same story on the OpenAI Agents SDK --------------------------------------------------

class ScriptedModel(Model):
    """Weather in two cities at once (concurrent tool calls), then a booking, then an answer:
    decided from the input items."""

    async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                           **kwargs: Any) -> OAResponse:
        await _effect("model", "oa_model")
        items = input if isinstance(input, list) else []
        done = {i["call_id"]: i["output"] for i in items if isinstance(i, dict)
                and i.get("type") == "function_call_output"}
        if not done:
            output: list[Any] = [_call("weather", {"city": c}, f"w-{c}") for c in CITIES]
        elif "b" not in done:
            output = [_call("book_oa", {"city": CITIES[-1]}, "b")]
        else:
            output = [ResponseOutputMessage(
                id="m", type="message", role="assistant", status="completed",
                content=[ResponseOutputText(type="output_text", text=f"done: {done['b']}",
                                            annotations=[])])]
        return OAResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(type="function_call", name=name, call_id=call_id,
                                    arguments=json.dumps(args))


@function_tool
async def weather(city: str) -> str:
    """The weather in a city."""
    key = await _effect("step", "oa_weather")
    return f"{city}: sunny (key={key})"


@function_tool
async def book_oa(city: str) -> str:
    """Book a trip."""
    key = await _effect("step", "oa_book")
    return f"booked {city} (key={key})"


scout = durable(OAAgent(name="scout", model=ScriptedModel(), tools=[weather, book_oa]),
                attempts=3)


@workflow(name="scout")
async def scout_trip(prompt: str) -> str:
    return str((await Runner.run(scout, prompt)).final_output)


AGENT_WORKFLOWS = [trip, scout_trip]
#: waits longer than 0.2 s park the run; the command's ``--db`` replaces the URL
AGENTS = Engine("sqlite:///unused.db", workflows=AGENT_WORKFLOWS, park_after=0.2)
