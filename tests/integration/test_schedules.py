"""Schedules on a virtual clock, on both backends: a month across a DST change in
Europe/Berlin fires exactly the expected slots, catch-up after an 8-hour outage, overlap
policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import perdure
from perdure import Engine, RunStatus, Schedule, VirtualClock, workflow
from perdure.testing import wait_for_status
from tests.integration.schedule_helpers import (
    FALL_BACK,
    SPRING_FORWARD,
    berlin_offset,
    fired,
    run_id,
    run_ids,
    until,
    utc,
)


@workflow(name="tick")
async def tick(tag: str) -> str:
    return tag


@workflow(name="held")
async def held(tag: str) -> str:
    """Runs until it is sent the signal ``go``: it stays not finished as long as a test
    likes."""
    await perdure.wait_for_signal("go")
    return tag


# -- a month across a DST change ------------------------------------------------------------

def expected_month(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """The slots of the daily 02:30 and the hourly schedule in (start, end], by hand.

    Daily 02:30 local: on the spring-forward day 02:30 does not exist and the slot fires once,
    right after the change (03:00 CEST = 01:00 UTC); on the fall-back day 02:30 happens twice
    and the slot fires once, at the first (CEST). Hourly: every real hour, 23 of them on the
    spring-forward day and 25 on the fall-back day.
    """
    slots: list[tuple[datetime, str]] = []
    day = start.date()
    while day <= end.date():
        if day == SPRING_FORWARD.date():
            slot = SPRING_FORWARD
        else:
            local = datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC)
            # The first 02:30 of the day: the offset in force just before it, which on the
            # fall-back day is still CEST.
            slot = local - berlin_offset(local - timedelta(hours=2))
        slots.append((slot, "daily"))
        day += timedelta(days=1)
    hour = start.replace(minute=0, second=0) + timedelta(hours=1)
    while hour <= end:
        slots.append((hour, "hourly"))
        hour += timedelta(hours=1)
    return sorted((s, n) for s, n in slots if start < s <= end)


@pytest.mark.parametrize("month", ["spring", "autumn"])
async def test_a_month_across_a_dst_change_fires_exactly_the_expected_slots(
        make_engine: Any, month: str) -> None:
    change = SPRING_FORWARD if month == "spring" else FALL_BACK
    start = change - timedelta(days=16, minutes=59)  # not on a slot
    end = start + timedelta(days=31)
    clock = VirtualClock(start)
    engine: Engine = await make_engine(tick, clock=clock)
    for name, cron in (("daily", "30 2 * * *"), ("hourly", "0 * * * *")):
        # A catch-up window of two days: the clock jumps a day at a time away from the change.
        await engine.schedules.create(Schedule(name, tick, name, cron=cron,
                                               timezone="Europe/Berlin", overlap="allow",
                                               catchup=timedelta(days=2)))
    expected = expected_month(start, end)
    # Around the change the clock stops exactly at every slot, so a firing that is early,
    # late or doubled shows in the counts; elsewhere it jumps a day at a time.
    near = {s for s, _ in expected if abs(s - change) <= timedelta(hours=36)}
    stops = sorted(near | {start + timedelta(days=d) for d in range(1, 32)})
    for stop in stops:
        clock.advance(stop - clock.now())
        for name in ("daily", "hourly"):
            due = [s for s, n in expected if n == name and s <= stop]
            info = await fired(engine, name, len(due))
            assert info.fired == len(due), (stop, info)
            if due:
                assert info.last_fired == due[-1], (stop, info)
    for name in ("daily", "hourly"):
        info = await engine.schedules.get(name)
        assert (info.skipped_missed, info.skipped_overlap) == (0, 0)
        assert await run_ids(engine, f"{name}@") == sorted(
            run_id(name, s) for s, n in expected if n == name)
    # Berlin's calendar day of the change has 23 or 25 hours, and one daily slot.
    local_day = [s for s, n in expected if n == "hourly"
                 and (s + berlin_offset(s)).date() == change.date()]
    assert len(local_day) == (23 if month == "spring" else 25)
    daily = {(s + berlin_offset(s)).date(): s for s, n in expected if n == "daily"}
    assert daily[change.date()] == (utc("2030-03-31T01:00") if month == "spring"
                                    else utc("2030-10-27T00:30"))
    # Every run ran, as the workflow it names.
    for rid in await run_ids(engine, "daily@"):
        assert (await engine.handle(rid).result(timeout=10)) == "daily"


# -- catch-up after downtime ----------------------------------------------------------------

@pytest.mark.parametrize("overlap", ["allow", "skip"])
async def test_catch_up_after_an_8_hour_outage_fires_the_window_and_skips_the_rest(
        make_engine: Any, overlap: str) -> None:
    s0 = utc("2030-06-01T12:00")
    clock = VirtualClock(s0 - timedelta(seconds=1))
    before: Engine = await make_engine(tick, clock=clock)
    await before.schedules.create(Schedule("half-hourly", tick, "x", cron="*/30 * * * *",
                                           overlap=overlap, catchup=timedelta(hours=3)))
    clock.advance(timedelta(seconds=1))
    await fired(before, "half-hourly", 1)
    await before.handle(run_id("half-hourly", s0)).result(timeout=10)
    await before.close()  # the outage: no worker is running
    clock.advance(timedelta(hours=8, seconds=1))
    after: Engine = await make_engine(tick, clock=clock)
    # 16 slots were missed; the 6 of the last 3 hours are inside the window.
    window = [s0 + timedelta(minutes=30 * i) for i in range(11, 17)]
    if overlap == "allow":
        info = await fired(after, "half-hourly", 1 + 6)
        expected = [s0, *window]
        assert (info.skipped_missed, info.skipped_overlap) == (10, 0)
    else:
        # Oldest first: the oldest slot inside the window starts; the rest of the window
        # finds it running and is skipped as overlapping.
        info = await fired(after, "half-hourly", 1 + 1)
        expected = [s0, window[0]]
        assert (info.skipped_missed, info.skipped_overlap) == (10, 5)
    assert info.fired == len(expected)
    assert await run_ids(after, "half-hourly@") == sorted(run_id("half-hourly", s)
                                                         for s in expected)
    assert info.next_fire == s0 + timedelta(hours=8, minutes=30)
    for s in expected:
        assert await after.handle(run_id("half-hourly", s)).result(timeout=10) == "x"
    # Back to normal: the next slot fires on time.
    clock.advance(info.next_fire - clock.now())
    info = await fired(after, "half-hourly", len(expected) + 1)
    assert info.last_fired == s0 + timedelta(hours=8, minutes=30)


# -- overlap policies -----------------------------------------------------------------------

async def _first_slot_running(make_engine: Any, overlap: str
                              ) -> tuple[Engine, VirtualClock, datetime]:
    """An hourly schedule of ``held`` whose first slot's run is waiting for its signal."""
    first = utc("2030-06-01T10:00")
    clock = VirtualClock(first - timedelta(seconds=1))
    engine: Engine = await make_engine(held, clock=clock)
    await engine.schedules.create(Schedule("hold", held, "t", cron="0 * * * *",
                                           overlap=overlap))
    clock.advance(timedelta(seconds=1))
    await fired(engine, "hold", 1)
    await wait_for_status(engine.handle(run_id("hold", first)), "running", "waiting")
    return engine, clock, first


async def _release(engine: Engine, slot: datetime) -> None:
    handle = engine.handle(run_id("hold", slot))
    await engine.signal(handle.id, "go")
    await handle.result(timeout=10)


async def test_overlap_skip_skips_a_slot_while_the_previous_run_goes_on(
        make_engine: Any) -> None:
    engine, clock, first = await _first_slot_running(make_engine, "skip")
    clock.advance(timedelta(hours=1))
    info = await until(lambda: _counted(engine, overlapped=1), what="the skip")
    assert (info.fired, info.next_fire) == (1, first + timedelta(hours=2))
    await _release(engine, first)
    clock.advance(timedelta(hours=1))
    await fired(engine, "hold", 2)
    assert await run_ids(engine, "hold@") == [run_id("hold", first),
                                              run_id("hold", first + timedelta(hours=2))]


async def test_overlap_allow_starts_every_slot(make_engine: Any) -> None:
    engine, clock, first = await _first_slot_running(make_engine, "allow")
    clock.advance(timedelta(hours=1))
    info = await fired(engine, "hold", 2)
    assert info.skipped_overlap == 0
    second = engine.handle(run_id("hold", first + timedelta(hours=1)))
    await wait_for_status(second, "running", "waiting")
    assert (await engine.status(run_id("hold", first))).status in (RunStatus.RUNNING,
                                                                   RunStatus.WAITING)


async def test_overlap_buffer_one_starts_one_slot_when_the_previous_run_ends(
        make_engine: Any) -> None:
    engine, clock, first = await _first_slot_running(make_engine, "buffer_one")
    second, third = first + timedelta(hours=1), first + timedelta(hours=2)
    clock.advance(timedelta(hours=1))
    info = await until(lambda: _buffered(engine), what="the buffered slot")
    assert (info.buffered, info.fired) == (second, 1)
    clock.advance(timedelta(hours=1))  # a second slot while one waits: skipped
    info = await until(lambda: _counted(engine, overlapped=1), what="the skip")
    assert info.buffered == second
    assert await run_ids(engine, "hold@") == [run_id("hold", first)]
    # The previous run ends: the buffered slot starts at once, under its own slot's id.
    await _release(engine, first)
    info = await fired(engine, "hold", 2)
    assert (info.buffered, info.last_run_id) == (None, run_id("hold", second))
    assert await run_ids(engine, "hold@") == [run_id("hold", first), run_id("hold", second)]
    await _release(engine, second)
    info = await engine.schedules.get("hold")
    assert (info.fired, info.skipped_overlap, info.next_fire) == (2, 1, third + timedelta(hours=1))


async def test_overlap_cancel_other_cancels_the_previous_run_and_starts_the_slot(
        make_engine: Any) -> None:
    engine, clock, first = await _first_slot_running(make_engine, "cancel_other")
    clock.advance(timedelta(hours=1))
    info = await fired(engine, "hold", 2)
    previous = engine.handle(run_id("hold", first))
    assert (await wait_for_status(previous, "cancelled")).status is RunStatus.CANCELLED
    current = engine.handle(run_id("hold", first + timedelta(hours=1)))
    await wait_for_status(current, "running", "waiting")
    assert info.last_run_id == current.id
    await _release(engine, first + timedelta(hours=1))


async def _counted(engine: Engine, *, overlapped: int) -> Any:
    info = await engine.schedules.get("hold")
    return info if info.skipped_overlap >= overlapped else None


async def _buffered(engine: Engine) -> Any:
    info = await engine.schedules.get("hold")
    return info if info.buffered is not None else None
