"""Durable Pydantic AI agents (``perdure.ai.pydantic_ai``) on both backends, in process.

The model is a ``FunctionModel`` that decides from the message history, so a replay sees the
answers the journal recorded. Each test's own workflows are registered with its own engine.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

import perdure
from perdure import (
    PayloadTooLarge,
    RetryPolicy,
    RunStatus,
    SerializationError,
    WorkflowFailed,
    workflow,
)
from perdure.ai.pydantic_ai import PerdureDurability, StepOptions, wait_for_approvals
from perdure.testing import wait_for_status

FAST = RetryPolicy(max_attempts=3, initial_delay=0.0, jitter=0.0)


def calls_then_answers(tool: str, args: dict[str, Any], text: str = "done") -> FunctionModel:
    """A model that calls ``tool`` once, then answers with ``text`` and the tool's return."""

    def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for m in messages for p in m.parts if p.part_kind == "tool-return"]
        if not returns:
            return ModelResponse(parts=[ToolCallPart(tool, args, tool_call_id="c1")])
        return ModelResponse(parts=[TextPart(f"{text}: {returns[-1].content}")])

    return FunctionModel(decide)


def make_agent(name: str = "travel", tool_name: str = "lookup",
               **durability: Any) -> tuple[Agent[None, str], list[str]]:
    """An agent with one tool ``tool_name`` that records each real call."""
    ran: list[str] = []

    async def lookup(city: str) -> str:
        try:
            ran.append(perdure.step_key())
        except perdure.NotInWorkflow:
            ran.append("not in a step")
        return f"{city} is sunny"

    lookup.__name__ = tool_name
    agent = Agent(calls_then_answers(tool_name, {"city": "Paris"}), name=name,
                  tools=[lookup], capabilities=[PerdureDurability(**durability)])
    return agent, ran


async def test_model_requests_and_tool_calls_are_steps_with_pinned_names(
        make_engine: Any) -> None:
    agent, ran = make_agent()

    @workflow(name="plan")
    async def plan(prompt: str) -> str:
        return (await agent.run(prompt)).output

    engine = await make_engine(plan)
    handle = await engine.start(plan, "go", id="names")
    assert await handle.result(timeout=10) == "done: Paris is sunny"
    journal = await handle.journal()
    # Persisted compatibility data: a change here strands the runs under way.
    assert [(e.kind, e.name) for e in journal] == [
        ("step", "travel__model.request"),
        ("step", "travel__function_toolset__<agent>.call_tool:lookup"),
        ("step", "travel__model.request"),
    ]
    assert ran == ["names:1"]


async def test_outside_a_workflow_the_agent_is_plain_pydantic_ai() -> None:
    agent, ran = make_agent()
    assert (await agent.run("go")).output == "done: Paris is sunny"
    assert ran == ["not in a step"]


async def test_a_renamed_tool_blocks_the_run_and_corrupts_nothing(make_engine: Any) -> None:
    old, _ = make_agent(tool_name="lookup")
    new, ran_new = make_agent(tool_name="find")

    def wf(agent: Agent[None, str]) -> Any:
        @workflow(name="plan")
        async def plan(prompt: str) -> str:
            out = (await agent.run(prompt)).output
            await perdure.wait_for_signal("go")
            return out

        return plan

    first = await make_engine(wf(old), park_after=0.01)
    handle = await first.start("plan", "go", id="renamed")
    await wait_for_status(handle, RunStatus.WAITING)
    before = await handle.journal()
    await first.close()

    second = await make_engine(wf(new))
    await second.signal("renamed", "go")
    info = await wait_for_status(second.handle("renamed"), RunStatus.BLOCKED)
    assert info.blocked_reason is not None and "call_tool:lookup" in info.blocked_reason
    assert ran_new == []
    assert [(e.seq, e.name, e.output) for e in await second.journal("renamed")][:len(before)] \
        == [(e.seq, e.name, e.output) for e in before]


async def test_a_tool_result_that_cannot_be_encoded_is_a_typed_error_naming_the_tool(
        make_engine: Any) -> None:
    def opaque(city: str) -> object:
        return object()

    agent = Agent(calls_then_answers("opaque", {"city": "Paris"}), name="travel",
                  tools=[opaque], capabilities=[PerdureDurability()])

    @workflow(name="plan")
    async def plan(prompt: str) -> str:
        try:
            await agent.run(prompt)
        except SerializationError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "no error"

    engine = await make_engine(plan)
    handle = await engine.start(plan, "go")
    message = await handle.result(timeout=10)
    assert message.startswith("SerializationError: the result of tool 'opaque'")
    # Not retried: retrying cannot make it encodable.
    [entry] = [e for e in await handle.journal() if e.name.endswith("call_tool:opaque")]
    assert entry.status == "failed" and entry.attempts == 1


async def test_per_tool_step_options_attempts_timeout_opt_out_and_compensate(
        make_engine: Any) -> None:
    tries: list[str] = []
    undone: list[tuple[str, Any]] = []

    def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        done = {p.tool_name for m in messages for p in m.parts if p.part_kind == "tool-return"}
        for tool in ("flaky", "inline", "book"):
            if tool not in done:
                return ModelResponse(parts=[ToolCallPart(tool, {"city": "Rome"},
                                                         tool_call_id=tool)])
        return ModelResponse(parts=[TextPart("all done")])

    async def flaky(city: str) -> str:
        tries.append(perdure.step_key())
        if len(tries) < 3:
            raise ConnectionError("try again")
        return "ok"

    async def inline(city: str) -> str:
        return "inline"

    async def book(city: str) -> str:
        return f"booked {city}"

    def cancel(city: str, result: Any) -> None:
        undone.append((city, result))

    agent = Agent(FunctionModel(decide), name="travel", tools=[flaky, inline, book],
                  capabilities=[PerdureDurability(
                      tool=StepOptions(retry=FAST),
                      tools={"flaky": StepOptions(attempts=3, timeout=5),
                             "inline": {"attempts": 1},
                             "book": StepOptions(compensate=cancel)})])
    agent._function_toolset.tools["inline"].metadata = {"perdure": False}

    @workflow(name="plan")
    async def plan(prompt: str) -> str:
        out = (await agent.run(prompt)).output
        raise RuntimeError(f"changed my mind after {out}")

    engine = await make_engine(plan)
    handle = await engine.start(plan, "go", id="opts")
    with pytest.raises(WorkflowFailed, match="changed my mind after all done"):
        await handle.result(timeout=10)
    names = [e.name for e in await handle.journal() if e.kind == "step"]
    assert "travel__function_toolset__<agent>.call_tool:flaky" in names
    assert not any(n.endswith(":inline") for n in names)  # opted out: no step
    assert len(tries) == 3 and len(set(tries)) == 1  # one step, three attempts, one key
    assert undone == [("Rome", "booked Rome")]  # the saga undid the booking


async def test_large_model_responses_are_offloaded_and_limited(make_engine: Any) -> None:
    big = "x" * 300_000

    def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart(big)])

    agent = Agent(FunctionModel(decide), name="writer",
                  capabilities=[PerdureDurability(model=StepOptions(retry=FAST))])

    @workflow(name="write")
    async def write(prompt: str) -> int:
        try:
            return len((await agent.run(prompt)).output)
        except PayloadTooLarge as exc:
            return -len(str(exc))

    engine = await make_engine(write, blobs="database", offload_above=64 * 1024)
    handle = await engine.start(write, "go", id="big")
    assert await handle.result(timeout=10) == len(big)
    raw = await engine.store.load_journal("big")
    assert raw[0].output is not None and raw[0].output.startswith("~blob::")
    await engine.close()  # the next run is driven by an engine with a lower limit

    small = await make_engine(write, max_payload=100_000)
    assert await (await small.start(write, "go", id="too-big")).result(timeout=10) < 0


@pytest.mark.parametrize(("payload", "ran", "told"), [
    (True, True, "booked Rome"),
    ({"b1": "too expensive"}, False, "too expensive"),
    ({"other": True}, False, "denied"),
    ("yes please", False, "unreadable"),
])
async def test_approvals_decide_each_pending_tool_call(make_engine: Any, payload: Any,
                                                       ran: bool, told: str) -> None:
    booked: list[str] = []

    def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for m in messages for p in m.parts
                   if p.part_kind in ("tool-return", "retry-prompt")]
        if not returns:
            return ModelResponse(parts=[ToolCallPart("book", {"city": "Rome"},
                                                     tool_call_id="b1")])
        return ModelResponse(parts=[TextPart(str(returns[-1].content))])

    agent = Agent(FunctionModel(decide), name="travel", capabilities=[PerdureDurability()])

    @agent.tool_plain(requires_approval=True)
    def book(city: str) -> str:
        booked.append(city)
        return f"booked {city}"

    @workflow(name="plan")
    async def plan(prompt: str) -> str:
        output_type: Any = [str, DeferredToolRequests]
        result = await agent.run(prompt, output_type=output_type)
        while isinstance(result.output, DeferredToolRequests):
            decisions = await wait_for_approvals(result.output, signal="decision")
            result = await agent.run(message_history=result.all_messages(),
                                     deferred_tool_results=decisions, output_type=output_type)
        return str(result.output)

    engine = await make_engine(plan, park_after=0.01)
    handle = await engine.start(plan, "go")
    await wait_for_status(handle, RunStatus.WAITING)  # parked, nothing booked yet
    assert booked == []
    await handle.signal("decision", payload)
    answer = await handle.result(timeout=10)
    assert told in answer
    assert booked == (["Rome"] if ran else [])


async def test_one_capability_on_two_agents_names_each_agents_steps(make_engine: Any) -> None:
    shared = PerdureDurability()

    def hello(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("hi")])

    one = Agent(FunctionModel(hello), name="one", capabilities=[shared])
    two = Agent(FunctionModel(hello), name="two", capabilities=[shared])

    @workflow(name="both")
    async def both() -> str:
        return (await one.run("a")).output + (await two.run("b")).output

    engine = await make_engine(both)
    handle = await engine.start(both)
    assert await handle.result(timeout=10) == "hihi"
    assert [e.name for e in await handle.journal()] == ["one__model.request",
                                                         "two__model.request"]


async def test_a_live_stream_gets_the_deltas_inside_the_step_and_marks_a_retry(
        make_engine: Any) -> None:
    attempts: list[int] = []

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("one two three")])

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> Any:
        attempts.append(1)
        yield "one "
        yield "two "
        if len(attempts) == 1:
            raise ConnectionError("the connection dropped mid-stream")
        yield "three"

    agent = Agent(FunctionModel(answer, stream_function=stream), name="talker",
                  capabilities=[PerdureDurability(model=StepOptions(retry=FAST),
                                                  stream="events", live_stream="tokens")])

    @workflow(name="talk")
    async def talk() -> str:
        return (await agent.run("hi")).output

    engine = await make_engine(talk)
    handle = await engine.start(talk, id="live")
    assert await handle.result(timeout=10) == "one two three"
    live = [e async for e in handle.read_stream("tokens")]
    starts = [(i, e["key"], e["attempt"]) for i, e in enumerate(live)
              if e["event_kind"] == "model_request_start"]
    # Two attempts of the one model step: the second start, with the same key, is the reset.
    assert [(key, attempt) for _, key, attempt in starts] == [("live:0", 1), ("live:0", 2)]
    first, second = starts[0][0], starts[1][0]
    assert "part_start" in [e["event_kind"] for e in live[first + 1:second]]  # the failed one's
    assert text_of(live[second + 1:]) == "one two three"
    # The journaled stream has the completed response once, and nothing of the failed attempt.
    events = [e async for e in handle.read_stream("events")]
    assert [e["event_kind"] for e in events].count("part_start") == 1
    assert text_of(events) == "one two three"


def text_of(events: list[Any]) -> str:
    """The text that part_start and part_delta events add up to."""
    return "".join(e["part"]["content"] if e["event_kind"] == "part_start"
                   else e["delta"]["content_delta"]
                   for e in events if e["event_kind"] in ("part_start", "part_delta"))


async def test_live_stream_appends_are_fenced(make_engine: Any) -> None:
    engine = await make_engine()
    with pytest.raises(perdure.LeaseLost):  # no such run owned at that epoch: nothing stored
        await engine.store.append_stream("nope", 1, "w", stream="tokens", seq=0, value='"x"',
                                         now=1.0)
    assert await engine.store.read_stream("nope", "tokens", 0, 10) == (None, [])
