"""Serverless and cron-driven hosts: ``run_once``, ``drive`` and ``tick`` (both backends)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    Engine,
    InvalidConfiguration,
    RunNotFound,
    RunOnceSummary,
    RunStatus,
    Schedule,
    TickSummary,
    UnknownWorkflowError,
    VirtualClock,
    step,
    workflow,
)

calls: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    calls.clear()


@step
async def record(text: str) -> str:
    calls.append(text)
    return text


@workflow
async def quick(n: int) -> int:
    await record(f"quick {n}")
    return n * 2


@workflow
async def napper(n: int) -> int:
    await record(f"before {n}")
    await perdure.sleep(timedelta(hours=1))
    await record(f"after {n}")
    return n


@workflow
async def listener() -> Any:
    await record("listening")
    return await perdure.wait_for_signal("go")


@workflow
async def slow() -> str:
    await record("slow")
    await asyncio.sleep(30)  # not durable: only a budget or a hand-back ends it
    return "never"


@workflow
async def parent() -> int:
    child = await perdure.start_child(quick, 21)
    return await child.result()


async def client(make_engine: Any, *workflows: Any, **options: Any) -> Engine:
    """An engine that drives runs on demand only (no background worker)."""
    engine: Engine = await make_engine(*workflows, worker=False, **options)
    return engine


async def test_run_once_drives_every_runnable_run_and_reports(make_engine: Any) -> None:
    engine = await client(make_engine, quick, napper, listener, parent,
                          clock=VirtualClock())
    for i in range(3):
        await engine.start(quick, i, id=f"q{i}")
    await engine.start(napper, 7, id="nap")
    await engine.start(listener, id="lis")
    await engine.start(parent, id="par")
    summary = await engine.run_once(max_seconds=30)
    assert isinstance(summary, RunOnceSummary)
    # the parent parks waiting for its child, which completes, so the parent is claimed again
    assert summary.completed == 5  # q0-2, the child and the parent
    assert summary.parked == 2  # the napper's timer, the listener's signal
    assert summary.handed_back == 0 and summary.failed == 0 and summary.blocked == 0
    assert summary.claimed >= 7 and not summary.budget_spent
    assert (summary.outbox_flushed, summary.schedules_fired, summary.runs_pruned) == (0, 0, 0)
    assert (await engine.status("q1")).status is RunStatus.COMPLETED
    assert (await engine.handle("par").result(timeout=5)) == 42
    # nothing is left: a second invocation claims nothing
    again = await engine.run_once(max_seconds=30)
    assert again.claimed == 0 and again.completed == 0
    assert sorted(calls).count("quick 0") == 1


async def test_run_once_fires_due_timers_and_signalled_runs(make_engine: Any) -> None:
    clock = VirtualClock()
    engine = await client(make_engine, napper, listener, clock=clock)
    await engine.start(napper, 1, id="nap")
    await engine.start(listener, id="lis")
    await engine.run_once(max_seconds=30)
    assert (await engine.status("nap")).status is RunStatus.WAITING
    clock.advance(timedelta(hours=2))
    await engine.signal("lis", "go", {"ok": True})
    tick = await engine.tick()
    assert isinstance(tick, TickSummary) and tick.timers_due == 2 and tick.recovered == 0
    summary = await engine.run_once(max_seconds=30)
    assert summary.timers_fired == 2 and summary.completed == 2
    assert await engine.handle("lis").result(timeout=5) == {"ok": True}
    assert calls.count("after 1") == 1 and calls.count("before 1") == 1


async def test_run_once_respects_max_runs(make_engine: Any) -> None:
    engine = await client(make_engine, quick)
    for i in range(5):
        await engine.start(quick, i, id=f"q{i}")
    first = await engine.run_once(max_seconds=30, max_runs=2)
    assert (first.claimed, first.completed, first.budget_spent) == (2, 2, True)
    rest = await engine.run_once(max_seconds=30)
    assert (rest.claimed, rest.completed) == (3, 3)
    assert len(calls) == 5


async def test_run_once_hands_back_what_the_budget_cut_off(make_engine: Any) -> None:
    engine = await client(make_engine, slow, quick)
    await engine.start(slow, id="slow")
    summary = await engine.run_once(max_seconds=0.5)
    assert summary.handed_back == 1 and summary.budget_spent and summary.claimed == 1
    info = await engine.status("slow")
    assert info.status is RunStatus.PENDING  # claimable at once, not after a lease
    again = await engine.run_once(max_seconds=0.3)
    assert again.claimed == 1 and again.recovered == 0
    assert calls == ["slow", "slow"] or calls == ["slow"]


async def test_drive_is_idempotent_for_a_repeated_message(make_engine: Any) -> None:
    engine = await client(make_engine, quick, listener)
    await engine.start(quick, 4, id="q")
    first = await engine.drive("q")
    second = await engine.drive("q")  # the same message, delivered again
    assert first.status is RunStatus.COMPLETED and second.status is RunStatus.COMPLETED
    assert calls == ["quick 4"]
    await engine.start(listener, id="lis")
    parked = await engine.drive("lis")
    assert parked.status is RunStatus.WAITING and parked.waiting_for is not None
    assert (await engine.drive("lis")).status is RunStatus.WAITING  # not due: nothing runs
    await engine.signal("lis", "go", 5)
    assert (await engine.drive("lis")).status is RunStatus.COMPLETED
    assert calls.count("listening") == 1


async def test_two_hosts_drive_the_same_message_once(make_engine: Any, db_url: str) -> None:
    a = await client(make_engine, slow)
    b = await client(make_engine, slow)
    await a.start(slow, id="s")
    # the first holds the run (its lease is live) while the second receives the same message
    first = asyncio.create_task(a.drive("s", max_seconds=2))
    while "slow" not in calls:
        await asyncio.sleep(0.01)
    info = await b.drive("s")
    assert info.status is RunStatus.RUNNING and calls == ["slow"]
    handed = await first
    assert handed.status is RunStatus.PENDING  # its budget ran out: handed back


async def test_bad_input_is_refused_at_the_call(make_engine: Any) -> None:
    engine = await client(make_engine, quick)
    await engine.start(quick, 1, id="q")
    for bad in (0, -1, math.nan, math.inf, "50", None, True):
        with pytest.raises(InvalidConfiguration):
            await engine.run_once(max_seconds=bad)  # type: ignore[arg-type]
    for runs in (0, -3, 1.5, True):
        with pytest.raises(InvalidConfiguration):
            await engine.run_once(max_seconds=5, max_runs=runs)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration):
        await engine.drive("q", max_seconds=-1)
    with pytest.raises(RunNotFound):
        await engine.drive("nope")
    with pytest.raises(InvalidConfiguration):
        await engine.drive("")
    # nothing was claimed or run by any of these
    assert (await engine.status("q")).status is RunStatus.PENDING and calls == []


async def test_drive_of_a_run_this_engine_has_no_code_for(make_engine: Any) -> None:
    engine = await client(make_engine, quick)
    other = await client(make_engine, napper)
    await other.start(napper, 1, id="n")
    with pytest.raises(UnknownWorkflowError):
        await engine.drive("n")
    assert (await engine.status("n")).status is RunStatus.PENDING


async def test_run_once_on_an_engine_with_a_background_worker_is_refused(
        make_engine: Any) -> None:
    engine = await make_engine(quick)
    with pytest.raises(InvalidConfiguration, match="worker=False"):
        await engine.run_once(max_seconds=1)
    bare = await make_engine(worker=False)
    with pytest.raises(InvalidConfiguration, match="no workflows"):
        await bare.run_once(max_seconds=1)


async def test_run_once_drives_queued_runs_within_their_queue(make_engine: Any) -> None:
    # A host claims queued runs from their line, under the queue's limits; a message naming a
    # queued run does not let it jump the line (drive leaves it pending).
    line = perdure.Queue("hosts-line", concurrency=1)
    engine = await client(make_engine, quick, queues=[line])
    for i in range(3):
        await engine.start(quick, i, id=f"lq{i}", queue=line)
    assert (await engine.drive("lq2")).status is RunStatus.PENDING
    assert calls == []
    summary = await engine.run_once(max_seconds=30)
    assert summary.completed == 3
    assert sorted(calls) == ["quick 0", "quick 1", "quick 2"]


async def test_run_once_and_tick_fire_due_schedules(make_engine: Any) -> None:
    # A deployment with no long-running worker: the schedules fire from the invocations.
    clock = VirtualClock(datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC))
    engine = await client(make_engine, quick, clock=clock)
    await engine.schedules.create(Schedule("every-minute", quick, 5, cron="* * * * *"))
    clock.advance(timedelta(seconds=40))  # 00:01:10: the 00:01 slot has come
    summary = await engine.run_once(max_seconds=30)
    assert summary.schedules_fired == 1 and summary.completed == 1
    assert calls == ["quick 5"]
    assert (await engine.status("every-minute@2030-01-01T00:01:00Z")).status \
        is RunStatus.COMPLETED
    clock.advance(timedelta(minutes=1))
    ticked = await engine.tick()
    assert ticked.schedules_fired == 1 and ticked.timers_due == 0
    assert (await engine.run_once(max_seconds=30)).completed == 1
    assert calls == ["quick 5", "quick 5"]


async def test_run_once_and_tick_prune_by_the_retention_policy(make_engine: Any) -> None:
    clock = VirtualClock()
    engine = await client(make_engine, quick, clock=clock, retention=timedelta(days=1))
    for i in range(3):
        await engine.start(quick, i, id=f"old{i}")
    assert (await engine.run_once(max_seconds=30)).runs_pruned == 0  # just finished: kept
    clock.advance(timedelta(days=2))
    await engine.start(quick, 9, id="new")
    summary = await engine.run_once(max_seconds=30)
    assert summary.completed == 1 and summary.runs_pruned == 3
    assert [r.id for r in await engine.list_runs()] == ["new"]
    clock.advance(timedelta(days=2))
    assert (await engine.tick()).runs_pruned == 1
