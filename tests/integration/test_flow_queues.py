"""Queues on both backends: concurrency, per-key concurrency, priority, fairness, rate, delay,
debounce, the report, and the validation of every flow argument at the call."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from perdure import (
    InvalidConfiguration,
    Queue,
    Rate,
    RunStatus,
    VirtualClock,
    step,
    workflow,
)
from perdure.testing import wait_for_status

line = Queue("line", concurrency=2)
solo = Queue("solo", concurrency=1)
tenants = Queue("tenants", concurrency=4, per_key_concurrency=1)
weighted = Queue("weighted", concurrency=1, weights={"big": 3})
rated = Queue("rated", rate=Rate(2, per=timedelta(seconds=10)))

state: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _reset() -> None:
    state.clear()
    state.update(running=0, peak=0, order=[], gate=asyncio.Event())


@step
async def hold(tag: str) -> str:
    state["running"] += 1
    state["peak"] = max(state["peak"], state["running"])
    state["order"].append(tag)
    try:
        await state["gate"].wait()
    finally:
        state["running"] -= 1
    return tag


@step
async def note(tag: str) -> str:
    state["order"].append(tag)
    return tag


@workflow(queue=line)
async def gated(tag: str) -> str:
    return await hold(tag)


@workflow(queue=solo)
async def serial(tag: str) -> str:
    return await note(tag)


@workflow
async def plain(tag: str) -> str:
    return await note(tag)


async def _counts(engine: Any, queue: str) -> tuple[int, int]:
    report = await engine.queues()
    [q] = [q for q in report.queues if q.name == queue]
    return q.running, q.depth


async def test_queue_concurrency_holds_and_the_rest_waits_in_line(make_engine: Any) -> None:
    engine = await make_engine(gated, concurrency=20)
    handles = [await engine.start(gated, f"t{i}") for i in range(8)]
    while state["running"] < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # give a wrong claim the chance to take more
    assert state["running"] == 2
    running, depth = await _counts(engine, "line")
    assert (running, depth) == (2, 6)
    info = await handles[-1].status()
    assert info.status is RunStatus.PENDING and info.queue == "line"
    state["gate"].set()
    assert sorted([await h.result(timeout=20) for h in handles]) == sorted(
        f"t{i}" for i in range(8))
    assert state["peak"] == 2
    assert [r.id for r in await engine.list_runs(queue="line")] and \
        not await engine.list_runs(queue="solo")


async def test_priority_then_fifo_within_a_queue(make_engine: Any) -> None:
    client = await make_engine(serial, worker=False)
    for i, prio in enumerate([5, 1, 5, 0, 1]):
        await client.start(serial, f"p{prio}-{i}", priority=prio)
    engine = await make_engine(serial)
    del engine
    while len(state["order"]) < 5:
        await asyncio.sleep(0.01)
    assert state["order"] == ["p0-3", "p1-1", "p1-4", "p5-0", "p5-2"]


async def test_fair_across_keys_a_small_key_is_not_behind_a_backlog(make_engine: Any) -> None:
    client = await make_engine(serial, worker=False)
    for i in range(30):
        await client.start(serial, f"A{i}", key="A")
    for i in range(3):
        await client.start(serial, f"B{i}", key="B")
    await make_engine(serial)
    while len(state["order"]) < 33:
        await asyncio.sleep(0.01)
    order = state["order"]
    # B arrived with the whole backlog of A before it, and is served round-robin with A:
    # its three runs are among the first 2 * 3 starts.
    assert max(order.index(f"B{i}") for i in range(3)) < 6, order
    assert [t for t in order if t.startswith("A")] == [f"A{i}" for i in range(30)]


@workflow(queue=weighted)
async def heavy(tag: str) -> str:
    return await note(tag)


async def test_a_key_weight_gives_it_a_larger_share(make_engine: Any) -> None:
    client = await make_engine(heavy, worker=False)
    for i in range(12):
        await client.start(heavy, f"s{i}", key="small")
    for i in range(12):
        await client.start(heavy, f"b{i}", key="big")
    await make_engine(heavy)
    while len(state["order"]) < 24:
        await asyncio.sleep(0.01)
    first = state["order"][:12]
    assert sum(t.startswith("b") for t in first) >= 8, first  # ~3 of every 4


@workflow(queue=tenants)
async def tenant_job(tag: str) -> str:
    return await hold(tag)


async def test_per_key_concurrency(make_engine: Any) -> None:
    engine = await make_engine(tenant_job, concurrency=20)
    handles = [await engine.start(tenant_job, f"{k}{i}", key=k)
               for k in ("x", "y") for i in range(3)]
    while state["running"] < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert state["running"] == 2
    assert sorted(state["order"]) == ["x0", "y0"]
    state["gate"].set()
    for h in handles:
        await h.result(timeout=20)
    assert state["peak"] == 2


@workflow(queue=rated)
async def metered(tag: str) -> str:
    return await note(tag)


async def test_queue_rate_counts_starts_in_a_sliding_window(make_engine: Any,
                                                             clock: VirtualClock) -> None:
    engine = await make_engine(metered, clock=clock)
    handles = [await engine.start(metered, f"r{i}") for i in range(5)]
    await handles[1].result(timeout=10)
    await handles[0].result(timeout=10)
    await asyncio.sleep(0.2)
    assert len(state["order"]) == 2
    assert (await handles[4].status()).status is RunStatus.PENDING
    clock.advance(timedelta(seconds=10))
    await handles[3].result(timeout=10)
    await asyncio.sleep(0.2)
    assert len(state["order"]) == 4
    clock.advance(timedelta(seconds=10))
    await handles[4].result(timeout=10)


async def test_delay_makes_a_run_wait_until_then(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(plain, serial, clock=clock)
    later = await engine.start(plain, "late", delay=timedelta(minutes=5))
    queued = await engine.start(serial, "late-q", delay=timedelta(minutes=5))
    for h in (later, queued):
        info = await wait_for_status(h, "waiting")
        assert info.waiting_for is not None and info.waiting_for.startswith("delay until")
    clock.advance(timedelta(minutes=4))
    await asyncio.sleep(0.2)
    assert state["order"] == []
    clock.advance(timedelta(minutes=1))
    assert await later.result(timeout=10) == "late"
    assert await queued.result(timeout=10) == "late-q"


async def test_debounce_coalesces_starts_into_one_run_with_the_latest_arguments(
        make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(plain, clock=clock)
    window = timedelta(seconds=30)
    first = await engine.start(plain, "v1", key="doc-7", debounce=window)
    clock.advance(timedelta(seconds=20))
    second = await engine.start(plain, "v2", key="doc-7", debounce=window)
    other = await engine.start(plain, "w1", key="doc-8", debounce=window)
    clock.advance(timedelta(seconds=20))  # 40 s after the first start, 20 s after the last
    await asyncio.sleep(0.2)
    assert first.id == second.id != other.id
    assert state["order"] == []
    info = await first.status()
    assert info.status is RunStatus.WAITING and "debounce" in (info.waiting_for or "")
    clock.advance(timedelta(seconds=10))
    assert await first.result(timeout=10) == "v2"
    assert await other.result(timeout=10) == "w1"
    assert sorted(state["order"]) == ["v2", "w1"]
    # Once it ran, a new start makes a new run.
    third = await engine.start(plain, "v3", key="doc-7", debounce=window)
    assert third.id != first.id


async def test_queues_report(make_engine: Any) -> None:
    engine = await make_engine(gated, concurrency=20)
    handles = [await engine.start(gated, f"t{i}") for i in range(5)]
    while state["running"] < 2:
        await asyncio.sleep(0.01)
    report = await engine.queues()
    [q] = [q for q in report.queues if q.name == "line"]
    assert (q.concurrency, q.running, q.depth, q.unroutable) == (2, 2, 3, 0)
    assert q.oldest_wait is not None and q.oldest_wait >= 0
    state["gate"].set()
    for h in handles:
        await h.result(timeout=20)


@pytest.mark.parametrize("call", [
    lambda e: e.start(plain, "x", queue="nope"),
    lambda e: e.start(plain, "x", queue=Queue("undeclared", concurrency=1)),
    lambda e: e.start(plain, "x", priority=1),
    lambda e: e.start(serial, "x", priority="high"),
    lambda e: e.start(serial, "x", priority=True),
    lambda e: e.start(serial, "x", priority=2**40),
    lambda e: e.start(plain, "x", debounce=timedelta(seconds=5)),
    lambda e: e.start(plain, "x", key="k", debounce=timedelta(seconds=5), id="fixed"),
    lambda e: e.start(plain, "x", key="k", debounce=-1),
    lambda e: e.start(plain, "x", delay=float("nan")),
    lambda e: e.start(plain, "x", delay=timedelta(seconds=-1)),
    lambda e: e.start(plain, "x", requires={"gpu": 1}),
    lambda e: e.start(plain, "x", requires=["gpu"]),
    lambda e: e.start(plain, "x", key=""),
    lambda e: e.start(plain, "x", key="a\x00b"),
], ids=["unknown-queue", "undeclared-queue", "priority-without-queue", "priority-str",
        "priority-bool", "priority-overflow", "debounce-without-key", "debounce-with-id",
        "debounce-negative", "delay-nan", "delay-negative", "selector-value",
        "selector-list", "key-empty", "key-nul"])
async def test_bad_flow_arguments_are_refused_at_the_call(make_engine: Any, call: Any) -> None:
    engine = await make_engine(plain, serial, worker=False)
    with pytest.raises(InvalidConfiguration):
        await call(engine)
    assert await engine.list_runs() == []


@pytest.mark.parametrize("make", [
    lambda: Queue("q", concurrency=0),
    lambda: Queue("q", concurrency=-1),
    lambda: Queue("q", per_worker=0),
    lambda: Queue("q", per_key_concurrency=1.5),
    lambda: Queue("q", rate=(1, 2)),
    lambda: Queue("", concurrency=1),
    lambda: Queue("q", weights={"k": 0}),
    lambda: Rate(0),
    lambda: Rate(5, per=timedelta(0)),
    lambda: Rate(5, per=float("inf")),
], ids=["concurrency-0", "concurrency-neg", "per-worker-0", "per-key-float", "rate-tuple",
        "name-empty", "weight-0", "rate-0", "per-0", "per-inf"])
def test_bad_definitions_are_refused(make: Any) -> None:
    with pytest.raises(InvalidConfiguration):
        make()


async def test_conflicting_and_unknown_queue_names_on_the_engine(db_url: str) -> None:
    from perdure import Engine

    with pytest.raises(InvalidConfiguration, match="two different queues"):
        Engine(db_url, workflows=[gated], queues=[Queue("line", concurrency=3)])

    @workflow(name="named", queue="missing")
    async def named() -> None:
        return None

    with pytest.raises(InvalidConfiguration, match="unknown queue 'missing'"):
        Engine(db_url, workflows=[named])
    with pytest.raises(InvalidConfiguration, match="labels"):
        Engine(db_url, workflows=[plain], labels={"gpu": 1})  # type: ignore[dict-item]


async def test_a_cancelled_run_in_line_ends_at_once(make_engine: Any) -> None:
    from perdure import RunCancelled

    await make_engine(gated, concurrency=5)
    client = await make_engine(gated, worker=False)
    # The queue (concurrency 2) is busy with two runs that wait; the third stands in line.
    runs = [await client.start(gated, f"g{i}") for i in range(3)]
    while state["running"] < 2:
        await asyncio.sleep(0.01)
    waiting = runs[2]  # first in, first out
    assert (await waiting.status()).status is RunStatus.PENDING
    assert await client.cancel(waiting.id)
    assert (await waiting.status()).status is RunStatus.CANCELLED  # at once, not when a
    with pytest.raises(RunCancelled):                              # slot frees up
        await waiting.result(timeout=5)
    state["gate"].set()
    for h in runs[:2]:
        await h.result(timeout=10)
    assert sorted(state["order"]) == ["g0", "g1"]


def test_the_sync_facade_starts_into_a_queue_and_reports(db_url: str) -> None:
    from perdure import SyncEngine

    with SyncEngine(db_url, workflows=[serial, plain], shutdown_grace=0.5) as engine:
        handle = engine.start(serial, "s", priority=3, key="k")
        assert handle.result(timeout=10) == "s"
        assert [r.id for r in engine.list_runs(queue="solo")] == [handle.id]
        [q] = [q for q in engine.queues().queues if q.name == "solo"]
        assert (q.concurrency, q.depth, q.running) == (1, 0, 0)
