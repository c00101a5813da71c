"""Workflows of the wait / failover / memory / scale benchmarks (imported by both the bench
process and the worker subprocesses of ``_agent.py``, so names and versions match)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import perdure
from perdure import step, workflow

#: in-process signal benchmark: called with the payload right after wait_for_signal returns
ON_SIGNAL: list[Callable[[Any], None]] = []
#: start -> first step probes: perf_counter at the first line of the step body
FIRST_STEP_AT: list[float] = []


@step
async def mark_step(i: int) -> int:
    FIRST_STEP_AT.append(time.perf_counter())
    return i + 1


@workflow
async def wf_mark(i: int) -> int:
    """One step that timestamps itself (start -> first step latency)."""
    return await mark_step(i)


@step
async def emit(i: int) -> float:
    """Cross-process signal benchmark: report the wall time at which this step body ran on
    the worker's stdout (the agent's protocol pipe), where the bench process reads it."""
    t = time.time()
    sys.stdout.write(json.dumps({"event": "stamp", "i": i, "t": t}) + "\n")
    sys.stdout.flush()
    return t


@workflow
async def wf_emit(i: int) -> float:
    """One step that stamps itself on the agent's pipe (start -> first step across
    processes)."""
    return await emit(i)


@workflow
async def cancel_me(i: int) -> int:
    """Wait in memory for a signal nobody sends; on Cancelled, stamp (cancel -> noticed across
    processes) and let the cancellation go on."""
    try:
        await perdure.wait_for_signal("never", timeout=3600)
    except perdure.Cancelled:
        await emit(i)
        raise
    return i


@workflow
async def ping_loop(n: int, remote: bool) -> int:
    """Wait for ``n`` signals "ping" in turn. In one process, hand each payload to the bench's
    hook at once; across processes, run the step ``emit`` (next durable operation) first."""
    for _ in range(n):
        payload = await perdure.wait_for_signal("ping")
        if remote:
            await emit(payload)
        else:
            for hook in ON_SIGNAL:
                hook(payload)
    return n


@step
async def woke() -> float:
    return time.time()


@workflow
async def alarm(due: float) -> float:
    """Sleep until ``due`` (unix seconds), then record the wall time in a step."""
    await perdure.sleep_until(datetime.fromtimestamp(due, UTC))
    return await woke()


@workflow
async def sleeper(i: int) -> int:
    """Park for a day."""
    await perdure.sleep(timedelta(days=1))
    return i


@step
async def hang(i: int) -> int:
    """A step that takes an hour (a worker is killed in the middle of it)."""
    await asyncio.sleep(3600)
    return i


@workflow
async def holder(i: int) -> int:
    return await hang(i)


WORKFLOWS = [wf_mark, wf_emit, cancel_me, ping_loop, alarm, sleeper, holder]
