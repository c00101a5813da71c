"""A durable travel agent: it researches, asks a person to approve, and books -- and its worker
is killed with SIGKILL in the middle.

    python examples/travel_agent.py

The agent is a Pydantic AI agent made durable by ``PerdureDurability``; its model here is a
``FunctionModel`` that decides from the conversation (so the example needs no API key: put a
real model name such as ``"openai:gpt-5"`` in its place). The script plays every part:

1. it starts the run and a worker process, and SIGKILLs that worker while the agent is
   researching (after its first model calls);
2. a second worker takes the run over: the model calls already made are not made again (the
   script counts the real calls), and the run parks -- no process holds it -- until a person
   approves the booking;
3. the script approves (a signal; a web API would do the same), and the booking runs once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

import perdure
import perdure.testing
from perdure import Engine, RunStatus, workflow
from perdure.ai.pydantic_ai import PerdureDurability, wait_for_approvals

CITIES = ("Lisbon", "Porto")
DATA = Path(os.environ.get("TRAVEL_DATA", "."))


def record(what: str) -> None:
    """Count a real call (one line per call, appended atomically)."""
    with open(DATA / "calls.log", "a") as log:
        log.write(f"{what} {os.getpid()}\n")


def think(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The model: research each city, then book the sunnier one, then say so."""
    record("model")
    returns = [p for m in messages for p in m.parts if p.part_kind == "tool-return"]
    research = [p.content for p in returns if p.tool_name == "research"]
    booked = [p.content for p in returns if p.tool_name == "book"]
    if booked:
        return ModelResponse(parts=[TextPart(f"All set: {booked[-1]}")])
    if len(research) < len(CITIES):
        city = CITIES[len(research)]
        return ModelResponse(parts=[ToolCallPart("research", {"city": city},
                                                 tool_call_id=f"research-{city}")])
    return ModelResponse(parts=[ToolCallPart("book", {"city": CITIES[-1], "nights": 3},
                                             tool_call_id="book")])


async def think_aloud(messages: list[ModelMessage], info: AgentInfo
                      ) -> AsyncIterator[str | dict[int, DeltaToolCall]]:
    """The same model, streamed (an agent with an event stream streams its model calls)."""
    for part in think(messages, info).parts:
        if isinstance(part, TextPart):
            for word in part.content.split(" "):
                yield word + " "
        elif isinstance(part, ToolCallPart):
            yield {0: DeltaToolCall(name=part.tool_name, json_args=json.dumps(part.args),
                                    tool_call_id=part.tool_call_id)}


agent = Agent(FunctionModel(think, stream_function=think_aloud), name="travel",
              capabilities=[PerdureDurability(stream="events")])


@agent.tool_plain
async def research(city: str) -> str:
    """The weather in a city (a slow search)."""
    record("research")
    await asyncio.sleep(0.3)  # the search's own I/O
    return f"{city}: sunny, 24 C"


@agent.tool_plain(requires_approval=True)
async def book(city: str, nights: int) -> str:
    """Book a hotel; a person must approve it first."""
    record("book")
    # The step key is the same on every attempt and after a crash: the hotel's API
    # deduplicates by it, so a retried booking is still one booking.
    return f"booked {nights} nights in {city} (ref {perdure.step_key()})"


@workflow(name="trip")
async def trip(request: str) -> str:
    output_type: Any = [str, DeferredToolRequests]
    result = await agent.run(request, output_type=output_type)
    while isinstance(result.output, DeferredToolRequests):
        decisions = await wait_for_approvals(result.output)  # parks the run
        result = await agent.run(message_history=result.all_messages(),
                                 deferred_tool_results=decisions, output_type=output_type)
    return str(result.output)


def engine(db: str, *, worker: bool) -> Engine:
    return Engine(f"sqlite:///{db}", workflows=[trip], worker=worker, park_after=0.2)


async def work(db: str) -> None:
    """A worker process: drive runs until killed."""
    async with engine(db, worker=True):
        await asyncio.Event().wait()


def spawn(db: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TRAVEL_DATA=str(DATA))
    return subprocess.Popen([sys.executable, __file__, "worker", db], env=env)


async def main() -> None:
    db = str(DATA / "travel.db")
    async with engine(db, worker=False) as client:
        handle = await client.start(trip, "Plan a long weekend by the sea", id="trip-1")
        first = spawn(db)
        seen = 0
        async for event in handle.read_stream("events"):
            seen += 1
            if event["event_kind"] == "function_tool_call" and \
                    "Porto" in event["part"]["args"]:  # researching Porto now
                break
        first.send_signal(signal.SIGKILL)
        first.wait()
        print(f"worker 1 killed after {seen} agent events")

        second = spawn(db)
        try:
            await perdure.testing.wait_for_status(handle, RunStatus.WAITING, timeout=30)
            print("waiting for approval; the run is parked")
            await handle.signal("approvals", {"book": True})
            print(await handle.result(timeout=30))
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait()

        calls = (DATA / "calls.log").read_text().split("\n")
        made = [c.split()[0] for c in calls if c]
        events = [e["event_kind"] async for e in handle.read_stream("events")]
        print(json.dumps({"model calls": made.count("model"), "research": made.count("research"),
                          "book": made.count("book"), "events": len(events)}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        asyncio.run(work(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            if "TRAVEL_DATA" not in os.environ:
                DATA = Path(tmp)
            asyncio.run(main())
