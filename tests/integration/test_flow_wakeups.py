"""A run waiting in a queue's line has no due time: only a wake-up gets it claimed, so none
may be lost. Regression: a run that finished while the worker's idle loop was asking the
database whether another process had committed (a quiet poll tick) set the wake-up, and the
loop cleared it unseen; the run in line then waited forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from perdure import Queue, VirtualClock, step, workflow

single = Queue("single", concurrency=1)
gate: dict[str, asyncio.Event] = {}


@step
async def wait_gate(tag: str) -> str:
    await gate["open"].wait()
    return tag


@workflow(queue=single)
async def one_at_a_time(tag: str) -> str:
    return await wait_gate(tag)


@pytest.mark.sqlite_only
async def test_a_slot_freed_during_a_quiet_poll_tick_is_not_lost(
        make_engine: Any, clock: VirtualClock) -> None:
    gate["open"] = asyncio.Event()
    # A virtual clock: no timer can rescue a lost wake-up; only the wake-up itself counts.
    engine = await make_engine(one_at_a_time, clock=clock, poll_interval=0.01)
    first = await engine.start(one_at_a_time, "first")
    second = await engine.start(one_at_a_time, "second")
    store = engine.store
    original = store.changed
    armed = asyncio.Event()

    async def changed() -> bool:
        result = await original()
        if armed.is_set():
            armed.clear()
            # The run holding the slot finishes while the loop awaits this answer.
            gate["open"].set()
            await first.result(timeout=10)
        return result

    store.changed = changed  # type: ignore[method-assign]
    await asyncio.sleep(0.05)
    assert (await second.status()).status.value == "pending"
    armed.set()
    assert await second.result(timeout=5) == "second"
