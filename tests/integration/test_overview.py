"""The overview the dashboard shows: unfinished runs by status, runs started and finished per
bucket, and the workers with what they serve and hold — the same on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

import perdure
from perdure import InvalidConfiguration, RunStatus, VirtualClock, workflow
from perdure.testing import wait_for_status


@workflow
async def quick(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    return n


@workflow
async def parked() -> str:
    return str(await perdure.wait_for_signal("go"))


async def test_counts_activity_and_workers(make_engine) -> None:
    clock = VirtualClock(start=1_800_000_000.0)
    client = await make_engine(quick, parked, clock=clock, worker=False)
    assert await client.unfinished_counts() == {s: 0 for s in RunStatus if not s.terminal}
    assert await client.workers() == []

    worker = await make_engine(quick, parked, clock=clock, park_after=0.01)
    ok = await client.start(quick, 1)
    bad = await client.start(quick, -1)
    waiting = await client.start(parked)
    await wait_for_status(ok, RunStatus.COMPLETED)
    await wait_for_status(bad, RunStatus.FAILED)
    await wait_for_status(waiting, RunStatus.WAITING)
    held = await client.start(parked)
    await wait_for_status(held, RunStatus.WAITING)
    await client.pause(held.id)
    await wait_for_status(held, RunStatus.PAUSED)

    counts = await client.unfinished_counts()
    assert counts[RunStatus.WAITING] == 1 and counts[RunStatus.PAUSED] == 1
    assert counts[RunStatus.RUNNING] == 0 and RunStatus.COMPLETED not in counts

    activity = await client.activity(window=timedelta(minutes=10),
                                     bucket=timedelta(minutes=1))
    assert activity.buckets == 10 and activity.bucket == 60.0
    assert sum(activity.started) == 4 and activity.started[-1] == 4
    assert sum(activity.completed) == 1 and sum(activity.failed) == 1
    assert sum(activity.cancelled) == 0

    (info,) = await client.workers()
    assert info.id == worker.worker_id and info.live
    assert info.serves == {"parked": ("1",), "quick": ("1",)}
    assert info.runs_held == 0

    # Ten minutes later, the same runs have left a ten-minute window.
    clock.advance(11 * 60)
    later = await client.activity(window=timedelta(minutes=10), bucket=timedelta(minutes=1))
    assert sum(later.started) == 0 and sum(later.completed) == 0



async def test_activity_rejects_bad_windows(make_engine) -> None:
    client = await make_engine(worker=False)
    with pytest.raises(InvalidConfiguration, match="window must be a positive timedelta"):
        await client.activity(window=timedelta(0))
    with pytest.raises(InvalidConfiguration, match="at most 1440"):
        await client.activity(window=timedelta(days=2), bucket=timedelta(minutes=1))


async def test_unfinished_statuses_page_like_any_list(make_engine) -> None:
    # Listed through the unfinished runs' index, not the creation walk: the same pages.
    clock = VirtualClock(start=1_800_000_000.0)
    worker = await make_engine(quick, parked, clock=clock, park_after=0.01)
    started = []
    for i in range(7):
        started.append(await worker.start(parked, id=f"p{i}"))
        await worker.start(quick, i, id=f"q{i}")
        clock.advance(1)
    for h in started:
        await wait_for_status(h, RunStatus.WAITING)
    await worker.pause("p3")
    await wait_for_status(started[3], RunStatus.PAUSED)
    seen: list[str] = []
    cursor = None
    while True:
        page = await worker.list_runs(status=["waiting", "paused"], limit=3, cursor=cursor)
        seen += [r.id for r in page]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"p{i}" for i in reversed(range(7))]
    assert [r.id for r in await worker.list_runs(status="paused")] == ["p3"]
    assert await worker.count_runs(status="waiting") == 6
    assert await worker.count_runs(status=["waiting", "paused"]) == 7
    assert [r.id for r in await worker.list_runs(status="waiting", workflow="quick")] == []
