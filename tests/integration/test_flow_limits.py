"""Step limits on both backends: a semaphore and a rate taken per attempt, runs that cannot get
a token park (holding no worker slot) and wake when one frees up, and routing by labels."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from perdure import Limit, Queue, Rate, RetryPolicy, RunStatus, VirtualClock, step, workflow
from perdure.testing import wait_for_status

gpu = Limit("gpu", concurrency=1)
api = Limit("api", rate=Rate(2, per=timedelta(seconds=10)))

state: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _reset() -> None:
    state.clear()
    state.update(running=0, peak=0, order=[], gate=asyncio.Event(), owners=[])


@step(limits=[gpu])
async def render(tag: str) -> str:
    state["running"] += 1
    state["peak"] = max(state["peak"], state["running"])
    state["order"].append(tag)
    try:
        await state["gate"].wait()
    finally:
        state["running"] -= 1
    return tag


@workflow
async def scene(tag: str) -> str:
    return await render(tag)


@step
async def quick(tag: str) -> str:
    return tag


@workflow
async def other(tag: str) -> str:
    return await quick(tag)


async def test_a_semaphore_parks_the_runs_that_cannot_get_a_slot(make_engine: Any) -> None:
    engine = await make_engine(scene, other, concurrency=3)
    handles = [await engine.start(scene, f"s{i}") for i in range(4)]
    while state["running"] < 1:
        await asyncio.sleep(0.01)
    [first] = state["order"]  # any of them may be the one that got the slot
    parked = [await wait_for_status(h, "waiting") for h in handles
              if h.id != (await _run_of(engine, handles, first))]
    assert all(p.waiting_for == "limit gpu" for p in parked) and len(parked) == 3
    assert state["running"] == 1
    # The parked runs hold no worker slot: other work flows (concurrency is 3, one is busy).
    assert [await (await engine.start(other, f"o{i}")).result(timeout=10)
            for i in range(5)] == [f"o{i}" for i in range(5)]
    report = await engine.queues()
    [lim] = [x for x in report.limits if x.name == "gpu"]
    assert (lim.concurrency, lim.in_use, lim.parked) == (1, 1, 3)
    state["gate"].set()
    assert sorted([await h.result(timeout=20) for h in handles]) == [f"s{i}" for i in range(4)]
    assert state["peak"] == 1
    report = await engine.queues()
    [lim] = [x for x in report.limits if x.name == "gpu"]
    assert (lim.in_use, lim.parked) == (0, 0)


async def _run_of(engine: Any, handles: list[Any], tag: str) -> str:
    """The id of the run started with argument ``tag``."""
    for h in handles:
        if tag in (await h.status()).input:
            return str(h.id)
    raise AssertionError(tag)


@step(limits=[api])
async def call_api(tag: str) -> str:
    state["order"].append(tag)
    return tag


@workflow
async def caller(tag: str) -> str:
    return await call_api(tag)


async def test_a_rate_limit_parks_until_the_known_time_a_token_frees(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(caller, clock=clock)
    handles = [await engine.start(caller, f"c{i}") for i in range(5)]
    waiting = []
    for h in handles:
        info = await wait_for_status(h, "waiting", "completed")
        if info.status is RunStatus.WAITING:
            waiting.append(info)
    assert len(state["order"]) == 2 and len(waiting) == 3
    assert all(w.waiting_for == "limit api" and w.wake_at is not None for w in waiting)
    # The waiters are spread over the times their tokens free up, not all at the first one.
    assert len({w.wake_at for w in waiting}) >= 2
    clock.advance(timedelta(seconds=10))
    while len(state["order"]) < 4:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert len(state["order"]) == 4
    clock.advance(timedelta(seconds=10))
    assert sorted([await h.result(timeout=10) for h in handles]) == [f"c{i}" for i in range(5)]


@step(limits=["gpu"])
async def by_name(tag: str) -> str:
    return tag


@workflow
async def named(tag: str) -> str:
    return await by_name(tag)


async def test_a_step_may_name_a_limit_declared_on_the_engine(make_engine: Any) -> None:
    engine = await make_engine(named, limits=[gpu])
    assert await (await engine.start(named, "n")).result(timeout=10) == "n"


async def test_an_undeclared_limit_name_blocks_the_run(make_engine: Any) -> None:
    engine = await make_engine(named)
    info = await wait_for_status(await engine.start(named, "n"), "blocked")
    assert info.blocked_reason is not None and "unknown limit 'gpu'" in info.blocked_reason


# A short back-off: it stays an in-memory wait between attempts (as the default 1 s and 2 s
# were, under park_after), without 3 s of real time per test.
@step(limits=[gpu], retry=RetryPolicy(max_attempts=3, initial_delay=0.01))
async def flaky(tag: str) -> str:
    state["order"].append(tag)
    if len(state["order"]) < 3:
        raise RuntimeError("try again")
    return tag


@workflow
async def retried(tag: str) -> str:
    return await flaky(tag)


async def test_each_attempt_takes_and_gives_back_its_slot(make_engine: Any) -> None:
    engine = await make_engine(retried, scene)
    assert await (await engine.start(retried, "r")).result(timeout=10) == "r"
    state["gate"].set()
    assert await (await engine.start(scene, "after")).result(timeout=10) == "after"


async def test_a_dead_workers_slot_returns_when_its_run_is_recovered(
        make_engine: Any, clock: VirtualClock) -> None:
    first = await make_engine(scene, clock=clock, lease=10.0)
    held = await first.start(scene, "held")
    while state["running"] < 1:
        await asyncio.sleep(0.01)
    await first.abort()  # a crash: its slot stays taken, its run stays 'running'
    state.update(running=0, peak=0)
    second = await make_engine(scene, clock=clock, lease=10.0)
    runs = [second.handle(held.id), await second.start(scene, "waiter")]
    # The dead worker's lease lapses (PostgreSQL saw it die at once): its run is recovered,
    # its old slot no longer counts, and of the two runs one takes the slot, one parks.
    clock.advance(timedelta(seconds=11))
    while True:
        infos = [await h.status() for h in runs]
        if state["running"] == 1 and any(i.waiting_for == "limit gpu" for i in infos):
            break
        await asyncio.sleep(0.01)
    state["gate"].set()
    assert sorted([await h.result(timeout=20) for h in runs]) == ["held", "waiter"]
    assert state["peak"] == 1


# -- routing ---------------------------------------------------------------------------------

@step
async def where(tag: str) -> str:
    state["owners"].append(tag)
    await state["gate"].wait()
    return tag


@workflow(requires={"gpu": "*"})
async def on_gpu(tag: str) -> str:
    return await where(tag)


eu_line = Queue("eu-line", concurrency=5)


@workflow(queue=eu_line, requires={"region": "eu"})
async def in_eu(tag: str) -> str:
    return await where(tag)


async def test_a_run_no_live_worker_can_take_waits_and_is_reported(make_engine: Any) -> None:
    plain = await make_engine(on_gpu)
    handle = await plain.start(on_gpu, "g")
    await asyncio.sleep(0.3)
    info = await handle.status()
    assert info.status is RunStatus.PENDING and info.requires == {"gpu": "*"}
    assert info.unroutable
    report = await plain.queues()
    [routed] = [q for q in report.queues if q.name is None]
    assert (routed.depth, routed.unroutable) == (1, 1)
    gpu_worker = await make_engine(on_gpu, labels={"gpu": "a100"})
    while not state["owners"]:
        await asyncio.sleep(0.01)
    row = await plain.store.get_run(handle.id)
    assert row is not None and row.owner == gpu_worker.worker_id
    state["gate"].set()
    assert await handle.result(timeout=10) == "g"


async def test_an_exact_label_value_and_a_start_overriding_the_workflow(
        make_engine: Any) -> None:
    us = await make_engine(in_eu, labels={"region": "us"})
    handle = await us.start(in_eu, "e")
    anywhere = await us.start(in_eu, "any", requires={})  # override: no requirement
    state["gate"].set()
    assert await anywhere.result(timeout=10) == "any"
    info = await handle.status()
    assert info.status is RunStatus.PENDING and info.unroutable and info.queue == "eu-line"
    eu = await make_engine(in_eu, labels={"region": "eu", "tier": "gold"})
    del eu
    assert await handle.result(timeout=10) == "e"
