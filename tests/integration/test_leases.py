"""A worker that claims again a run it still drives (its lease lapsed: the heartbeat could not
reach the database, or a virtual clock jumped past it) stops the old, fenced execution before
it drives the new claim: the step never runs twice at once in one worker, the run finishes
once, and the old execution's end does not drop the new one's context."""

from __future__ import annotations

import asyncio
from typing import Any

from perdure import VirtualClock, step, workflow

#: made by each test, in its own event loop
events: dict[str, asyncio.Event] = {}
calls: list[int] = []
#: executions inside the step now, and the most there ever were at once
inside = {"now": 0, "most": 0}


@step
async def held(i: int) -> int:
    calls.append(i)
    inside["now"] += 1
    inside["most"] = max(inside["most"], inside["now"])
    events["entered"].set()
    try:
        await events["gate"].wait()
    finally:
        inside["now"] -= 1
    return i


@workflow
async def held_run(i: int) -> int:
    first = await held(i)
    return first + await held(i)


async def test_a_worker_claiming_again_a_run_it_drives_hands_over_to_the_new_claim(
        make_engine: Any, clock: VirtualClock) -> None:
    entered = events["entered"] = asyncio.Event()
    gate = events["gate"] = asyncio.Event()
    calls.clear()
    inside.update(now=0, most=0)
    engine = await make_engine(held_run, clock=clock)
    worker = engine._worker
    handle = await engine.start(held_run, 3)
    await entered.wait()  # the first execution is inside its step, at epoch 1
    # The claim the worker makes once the lease lapsed (as of a time past it) takes the run
    # at epoch 2, for the same worker; the claim cycle hands what it claimed to _spawn.
    later = clock.time() + worker.lease + 1
    [again] = await engine.store.claim(worker=worker.id, keys=worker.keys, limit=1,
                                       now=later, lease_until=later + worker.lease)
    assert (again.id, again.epoch) == (handle.id, 2)
    entered.clear()
    worker._spawn(again, later + worker.lease)
    await entered.wait()  # the new execution re-ran the step the old one had not journaled
    gate.set()
    assert await handle.result(timeout=10) == 6
    journal = await handle.journal()
    assert [(e.seq, e.kind, e.status, e.attempts) for e in journal] == [
        (0, "step", "completed", 1), (1, "step", "completed", 1)]
    assert calls == [3, 3, 3]  # the step of the lost execution, then the new one's two
    assert inside["most"] == 1  # the old execution had stopped before the new one began
    while worker.active:  # the old execution's task ends without dropping the new one's
        await asyncio.sleep(0)
    assert worker.runner.contexts == {}
