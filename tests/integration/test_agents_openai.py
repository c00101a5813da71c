"""Durable OpenAI Agents SDK agents (``perdure.ai.openai_agents``) on both backends.

The model is a fake ``Model`` that decides from the input items (the conversation so far), so
a replay sees the answers the journal recorded; it counts its real calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import perdure
from perdure import RunStatus, workflow
from perdure.ai.openai_agents import durable
from perdure.testing import wait_for_status


def text(answer: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(id="m", type="message", role="assistant", status="completed",
                                 content=[ResponseOutputText(type="output_text", text=answer,
                                                             annotations=[])])


def call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(type="function_call", name=name, call_id=call_id,
                                    arguments=json.dumps(args))


CALLS = ("c1", "c2")


class FakeModel(Model):
    """Weather for two cities at once (concurrent tool calls), then an answer."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                           **kwargs: Any) -> ModelResponse:
        self.calls += 1
        items = input if isinstance(input, list) else []
        outputs = [i["output"] for i in items if isinstance(i, dict)
                   and i.get("type") == "function_call_output" and i.get("call_id") in CALLS]
        if not outputs:
            output: list[Any] = [call("weather", {"city": "Oslo"}, "c1"),
                                 call("weather", {"city": "Rome"}, "c2")]
        else:
            output = [text(" / ".join(sorted(str(o) for o in outputs)))]
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def make_agent() -> tuple[Agent[Any], FakeModel, list[str]]:
    ran: list[str] = []
    model = FakeModel()

    @function_tool
    async def weather(city: str) -> str:
        """The weather in a city."""
        try:
            ran.append(perdure.step_key())
        except perdure.NotInWorkflow:
            ran.append("not in a step")
        return f"{city}: sunny"

    return Agent(name="scout", model=model, tools=[weather]), model, ran


async def test_model_calls_and_function_tools_are_steps_in_a_deterministic_order(
        make_engine: Any) -> None:
    agent, model, ran = make_agent()
    scout = durable(agent)

    @workflow(name="scout")
    async def run(prompt: str) -> str:
        result = await Runner.run(scout, prompt)
        await perdure.wait_for_signal("go")  # parks: the resumed run replays it all
        return str(result.final_output)

    engine = await make_engine(run, park_after=0.01)
    handle = await engine.start(run, "weather?", id="oa")
    await wait_for_status(handle, RunStatus.WAITING)
    await handle.signal("go")
    assert await handle.result(timeout=10) == "Oslo: sunny / Rome: sunny"
    steps = [(e.seq, e.name) for e in await handle.journal() if e.kind == "step"]
    assert steps == [(0, "openai_agents__scout.model"),
                     (1, "openai_agents__scout.tool:weather"),
                     (2, "openai_agents__scout.tool:weather"),
                     (3, "openai_agents__scout.model")]
    journal = await handle.journal()
    assert [json.loads(e.output or "null") for e in journal if e.seq in (1, 2)] \
        == ["Oslo: sunny", "Rome: sunny"]  # the model's order, not the tasks'
    assert model.calls == 2 and sorted(ran) == ["oa:1", "oa:2"]  # nothing repeated by replay


async def test_a_tool_can_opt_out_and_outside_a_workflow_the_agent_is_plain(
        make_engine: Any) -> None:
    agent, model, ran = make_agent()
    result = await Runner.run(durable(agent), "weather?")
    assert result.final_output == "Oslo: sunny / Rome: sunny"
    assert model.calls == 2 and ran == ["not in a step"] * 2

    inline = durable(agent, tools={"weather": False})

    @workflow(name="scout")
    async def run(prompt: str) -> str:
        return str((await Runner.run(inline, prompt)).final_output)

    engine = await make_engine(run)
    handle = await engine.start(run, "weather?")
    assert await handle.result(timeout=10) == "Oslo: sunny / Rome: sunny"
    assert [e.name for e in await handle.journal()] == ["openai_agents__scout.model"] * 2


async def test_a_handoff_target_is_made_durable_too(make_engine: Any) -> None:
    specialist, _, _ran = make_agent()

    class Router(Model):
        async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                               **kwargs: Any) -> ModelResponse:
            # A durable tool call and a handoff in one response: the tool takes a step (and
            # does not wait for the handoff, which takes none), then the handoff happens.
            return ModelResponse(output=[call("transfer_to_scout", {}, "h1"),
                                         call("weather", {"city": "Bergen"}, "r1")],
                                 usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    router = durable(Agent(name="router", model=Router(), handoffs=[specialist],
                           tools=specialist.tools))

    @workflow(name="route")
    async def route(prompt: str) -> str:
        return str((await Runner.run(router, prompt)).final_output)

    engine = await make_engine(route)
    handle = await engine.start(route, "weather?")
    assert await handle.result(timeout=10) == "Oslo: sunny / Rome: sunny"
    names = [e.name for e in await handle.journal() if e.kind == "step"]
    assert names == ["openai_agents__router.model", "openai_agents__router.tool:weather",
                     "openai_agents__scout.model",
                     "openai_agents__scout.tool:weather", "openai_agents__scout.tool:weather",
                     "openai_agents__scout.model"]
