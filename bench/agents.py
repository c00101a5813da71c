"""The overhead Perdure adds to a Pydantic AI agent, per model call and per tool call.

    .venv/bin/python -m bench.agents                 # SQLite; prints a table, writes JSON
    .venv/bin/python -m bench.agents --rounds 5 --out bench/results-agents-sqlite.json

The same agent runs twice: as plain Pydantic AI (``agent.run`` outside any workflow, where
``PerdureDurability`` steps aside), and inside a workflow, where each model request and each
tool call is a Perdure step. The model is a ``FunctionModel`` that answers at once, and the
tool returns at once, so what is measured is the durability itself: the step bookkeeping, the
JSON encoding of the response or result, and the journal commit.

* ``model``: one workflow makes ``N`` agent runs of one model call each (no tools).
* ``tool``: one agent run of ``N`` tool calls (``N + 1`` model calls: call a tool, read its
  result, call the next); the per-tool overhead is what remains after the model calls' share.
* ``bare``: ``N`` plain Perdure steps that return (and decode) what a model step journals:
  Perdure's own share of the overhead; the rest is Pydantic AI's durable-execution machinery.

Each is timed inside the workflow (around the agent runs only, not the start or the claim);
the plain agent is timed the same way outside. SQLite at ``synchronous="normal"`` (a commit
survives a process crash; see the README) and at the default ``"full"`` (an fsync per commit).
Medians over rounds, each round on a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, UsageLimits
from pydantic_ai.durable_exec import JSON_CODEC
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from perdure import Engine, step, workflow
from perdure.ai.pydantic_ai import PerdureDurability

N = 100


def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Call ``tick`` until the run's tool budget (in the prompt) is spent, then answer."""
    first = messages[0].parts[-1]
    budget = int(getattr(first, "content", "0"))
    done = sum(1 for m in messages for p in m.parts if p.part_kind == "tool-return")
    if done < budget:
        return ModelResponse(parts=[ToolCallPart("tick", {"i": done}, tool_call_id=f"t{done}")])
    return ModelResponse(parts=[TextPart("ok")])


agent = Agent(FunctionModel(answer), name="bench", capabilities=[PerdureDurability()])


@agent.tool_plain
def tick(i: int) -> int:
    return i + 1


async def model_calls(n: int) -> list[float]:
    """Wall and CPU seconds of ``n`` agent runs of one model call each."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        await agent.run("0")
    return [time.perf_counter() - t0, time.process_time() - c0]


async def tool_calls(n: int) -> list[float]:
    """Wall and CPU seconds of one agent run of ``n`` tool calls."""
    t0, c0 = time.perf_counter(), time.process_time()
    await agent.run(str(n), usage_limits=UsageLimits(request_limit=None))
    return [time.perf_counter() - t0, time.process_time() - c0]


_RESPONSE = ModelResponse(parts=[TextPart("ok")])


@step(name="bench_bare")
async def bare(i: int) -> Any:
    """A plain Perdure step returning what a model step journals (the JSON of a response)."""
    return JSON_CODEC.dump(ModelResponse, _RESPONSE)


async def bare_steps(n: int) -> list[float]:
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        JSON_CODEC.load(ModelResponse, await bare(i))
    return [time.perf_counter() - t0, time.process_time() - c0]


@workflow(name="bench_agent")
async def durable(kind: str, n: int) -> list[float]:
    if kind == "bare":
        return await bare_steps(n)
    return await (model_calls(n) if kind == "model" else tool_calls(n))


async def one_round(n: int, synchronous: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    out["plain_model"] = await model_calls(n)
    out["plain_tool"] = await tool_calls(n)
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        async with Engine(f"sqlite:///{tmp}/agents.db", workflows=[durable],
                          synchronous=synchronous) as engine:
            for kind in ("model", "tool", "bare"):
                handle = await engine.start(durable, kind, n)
                out[f"durable_{kind}"] = await handle.result(timeout=600)
    return out


def per_call(r: dict[str, list[float]], n: int) -> dict[str, float]:
    """Milliseconds per call: the plain agent's, and the overhead per model and tool call, in
    wall time and in CPU time of the process."""
    out: dict[str, float] = {}
    for i, clock in enumerate(("wall", "cpu")):
        model = (r["durable_model"][i] - r["plain_model"][i]) / n
        tool = ((r["durable_tool"][i] - r["plain_tool"][i]) - (n + 1) * model) / n
        out[f"plain_model_{clock}_ms"] = r["plain_model"][i] / n * 1000
        out[f"model_overhead_{clock}_ms"] = model * 1000
        out[f"tool_overhead_{clock}_ms"] = tool * 1000
        out[f"bare_step_{clock}_ms"] = r["durable_bare"][i] / n * 1000
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    await one_round(20, "normal")  # warm-up: imports, codecs, the schema
    results: dict[str, Any] = {"n": args.n, "rounds": args.rounds, "python": sys.version.split()[0],
                               "machine": platform.machine(), "modes": {}}
    print("| SQLite synchronous | clock | plain model call (ms) | overhead per model call (ms) "
          "| overhead per tool call (ms) | a bare step with that result (ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for mode in ("normal", "full"):
        rounds = [per_call(await one_round(args.n, mode), args.n) for _ in range(args.rounds)]
        med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        low = {k: min(r[k] for r in rounds) for k in rounds[0]}
        results["modes"][mode] = {"median": med, "min": low, "rounds": rounds}
        for clock in ("wall", "cpu"):
            cells = [f"{med[f'{what}_{clock}_ms']:.2f} (min {low[f'{what}_{clock}_ms']:.2f})"
                     for what in ("plain_model", "model_overhead", "tool_overhead", "bare_step")]
            print(f"| {mode} | {clock} | " + " | ".join(cells) + " |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
