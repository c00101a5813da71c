"""Managing schedules, on both backends: create (and update by creating again), pause,
resume, trigger, backfill, delete; bad input is refused at the call, naming the argument,
with nothing written."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from perdure import (
    Engine,
    InvalidConfiguration,
    Overlap,
    Schedule,
    ScheduleNotFound,
    SerializationError,
    SyncEngine,
    UnknownWorkflowError,
    VirtualClock,
    workflow,
)
from perdure.storage.port import ScheduleRow
from tests.integration.schedule_helpers import fired, run_id, run_ids, utc

START = utc("2030-06-01T09:59:30")


@workflow(name="report")
async def report(team: str, *, hours: int = 24) -> str:
    return f"{team}/{hours}"


@workflow(name="stranger")
async def stranger() -> None:
    """Not registered on the engines below."""


async def _engine(make_engine: Any) -> tuple[Engine, VirtualClock]:
    clock = VirtualClock(START)
    engine: Engine = await make_engine(report, clock=clock)
    return engine, clock


def hourly(**options: Any) -> Schedule:
    return Schedule("reports", report, "ops", cron="0 * * * *", **options)


async def test_create_stores_the_spec_and_the_next_slot(make_engine: Any) -> None:
    engine, clock = await _engine(make_engine)
    info = await engine.schedules.create(hourly(kwargs={"hours": 1}, timezone="Asia/Tokyo",
                                                catchup=90))
    assert (info.id, info.workflow, info.version, info.cron, info.timezone) == (
        "reports", "report", "1", "0 * * * *", "Asia/Tokyo")
    assert (info.overlap, info.catchup, info.paused) == (Overlap.SKIP, timedelta(seconds=90),
                                                         False)
    assert info.next_fire == utc("2030-06-01T10:00")
    assert (info.fired, info.last_run_id, info.last_fired) == (0, None, None)
    assert [i.id for i in await engine.schedules.list()] == ["reports"]
    clock.advance(30)
    await fired(engine, "reports", 1)
    handle = engine.handle(run_id("reports", utc("2030-06-01T10:00")))
    assert await handle.result(timeout=10) == "ops/1"


async def test_creating_again_changes_nothing_or_updates_the_spec(make_engine: Any) -> None:
    engine, clock = await _engine(make_engine)
    first = await engine.schedules.create(hourly())
    assert await engine.schedules.create(hourly()) == first  # an application's every start
    clock.advance(30)
    await fired(engine, "reports", 1)
    # New arguments and policy: the timing and the counters stay.
    changed = await engine.schedules.create(
        Schedule("reports", report, "sre", cron="0 * * * *", overlap="allow"))
    assert (changed.overlap, changed.fired, changed.next_fire) == (
        Overlap.ALLOW, 1, utc("2030-06-01T11:00"))
    assert changed.input == '{"team":"sre"}'
    # A new cron: the next slot after now under it.
    changed = await engine.schedules.create(
        Schedule("reports", report, "sre", cron="*/15 * * * *"))
    assert (changed.cron, changed.next_fire, changed.fired) == (
        "*/15 * * * *", utc("2030-06-01T10:15"), 1)
    clock.advance(timedelta(minutes=15))
    info = await fired(engine, "reports", 2)
    assert await engine.handle(info.last_run_id or "").result(timeout=10) == "sre/24"
    assert len(await engine.schedules.list()) == 1


async def test_pause_and_resume(make_engine: Any) -> None:
    engine, clock = await _engine(make_engine)
    await engine.schedules.create(hourly())
    await engine.schedules.pause("reports")
    await engine.schedules.pause("reports")  # again: still paused
    assert (await engine.schedules.get("reports")).paused
    clock.advance(timedelta(hours=3))  # three slots pass while paused: none fires
    await asyncio.sleep(0.05)  # give a wrong firing the chance to show
    await engine.schedules.create(hourly())  # an application restart keeps the pause
    info = await engine.schedules.get("reports")
    assert (info.paused, info.fired) == (True, 0)
    await engine.schedules.resume("reports")
    info = await engine.schedules.get("reports")
    # From the next slot after now: the paused ones never fire.
    assert (info.paused, info.next_fire) == (False, utc("2030-06-01T13:00"))
    await engine.schedules.resume("reports")  # not paused: left as it is
    assert (await engine.schedules.get("reports")).next_fire == utc("2030-06-01T13:00")
    clock.advance(timedelta(minutes=30))
    info = await fired(engine, "reports", 1)
    assert info.last_fired == utc("2030-06-01T13:00")
    assert info.skipped_missed == 0
    assert await run_ids(engine, "reports@") == [run_id("reports", utc("2030-06-01T13:00"))]


async def test_trigger_starts_a_run_now_that_later_slots_see(make_engine: Any) -> None:
    engine, clock = await _engine(make_engine)
    await engine.schedules.create(hourly())
    handle = await engine.schedules.trigger("reports")
    assert handle.id.startswith("reports@trigger-")
    assert await handle.result(timeout=10) == "ops/24"
    again = await engine.schedules.trigger("reports")
    assert again.id != handle.id
    await again.result(timeout=10)
    info = await engine.schedules.get("reports")
    # Triggers fire no slot: the counters and the next slot are the schedule's own.
    assert (info.last_run_id, info.fired, info.next_fire) == (again.id, 0,
                                                              utc("2030-06-01T10:00"))
    clock.advance(30)
    await fired(engine, "reports", 1)


async def test_backfill_starts_every_slot_of_a_range_once(make_engine: Any) -> None:
    engine, _ = await _engine(make_engine)
    await engine.schedules.create(hourly(overlap="skip"))
    start, end = utc("2030-05-01T00:00"), utc("2030-05-01T05:00")
    handles = await engine.schedules.backfill("reports", start, end)
    expected = [run_id("reports", start + timedelta(hours=h)) for h in range(5)]
    assert [h.id for h in handles] == expected  # inclusive start, exclusive end
    for h in handles:  # whatever the overlap policy
        assert await h.result(timeout=10) == "ops/24"
    # Again, overlapping: the slots that have their run are left alone.
    more = await engine.schedules.backfill("reports", start + timedelta(minutes=1),
                                           end + timedelta(hours=1))
    assert [h.id for h in more] == [*expected[1:], run_id("reports", end)]
    await more[-1].result(timeout=10)
    assert await run_ids(engine, "reports@2030-05") == [*expected, run_id("reports", end)]
    info = await engine.schedules.get("reports")
    assert (info.fired, info.last_run_id) == (0, None)  # backfills are not the schedule's
    assert await engine.schedules.backfill("reports", utc("2030-05-01T00:01"),
                                           utc("2030-05-01T00:59")) == []


async def test_delete_keeps_the_runs(make_engine: Any) -> None:
    engine, clock = await _engine(make_engine)
    await engine.schedules.create(hourly())
    clock.advance(30)
    info = await fired(engine, "reports", 1)
    assert await engine.schedules.delete("reports") is True
    assert await engine.schedules.delete("reports") is False
    with pytest.raises(ScheduleNotFound, match="reports"):
        await engine.schedules.get("reports")
    assert await engine.schedules.list() == []
    assert await engine.handle(info.last_run_id or "").result(timeout=10) == "ops/24"
    clock.advance(timedelta(hours=2))  # no more firings
    await asyncio.sleep(0.05)  # give a wrong firing the chance to show
    assert await run_ids(engine, "reports@") == [info.last_run_id]


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "named"), [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "* * *"}, "cron"),
    ({"cron": "@hourly"}, "cron"),
    ({"cron": ""}, "cron"),
    ({"cron": 5}, "cron"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"timezone": None}, "timezone"),
    ({"overlap": "sometimes"}, "overlap"),
    ({"overlap": None}, "overlap"),
    ({"catchup": -1}, "catchup"),
    ({"catchup": 0}, "catchup"),
    ({"catchup": timedelta(0)}, "catchup"),
    ({"catchup": math.nan}, "catchup"),
    ({"catchup": "1h"}, "catchup"),
    ({"catchup": timedelta(days=365 * 200)}, "catchup"),
    ({"kwargs": ["hours", 1]}, "kwargs"),
], ids=lambda v: repr(v) if not isinstance(v, str) else v)
async def test_a_bad_schedule_is_refused_naming_the_argument(
        make_engine: Any, options: dict[str, Any], named: str) -> None:
    engine, _ = await _engine(make_engine)
    spec: dict[str, Any] = {"cron": "0 * * * *", **options}
    with pytest.raises(InvalidConfiguration, match=named):
        Schedule("reports", report, "ops", **spec)
    assert await engine.schedules.list() == []


@pytest.mark.parametrize(("schedule_id", "wf"), [
    ("", report), ("a\x00b", report), ("x" * 201, report), (7, report), ("reports", 42),
    ("reports", "")])
def test_a_bad_id_or_workflow_is_refused(schedule_id: Any, wf: Any) -> None:
    named = "schedule id" if wf is report else "workflow"
    with pytest.raises(InvalidConfiguration, match=named):
        Schedule(schedule_id, wf, cron="0 * * * *")


async def test_bad_arguments_and_unknown_workflows_write_nothing(make_engine: Any) -> None:
    engine, _ = await _engine(make_engine)
    with pytest.raises(SerializationError):
        Schedule("reports", report, object(), cron="0 * * * *")
    with pytest.raises(TypeError):
        Schedule("reports", report, "a", "b", "c", cron="0 * * * *")
    with pytest.raises(UnknownWorkflowError):
        await engine.schedules.create(Schedule("s", stranger, cron="0 * * * *"))
    with pytest.raises(UnknownWorkflowError):
        await engine.schedules.create(Schedule("s", "nobody", cron="0 * * * *"))
    # By name, the arguments are encoded by create: refused there.
    with pytest.raises(SerializationError):
        await engine.schedules.create(Schedule("s", "report", object(), cron="0 * * * *"))
    with pytest.raises(InvalidConfiguration, match="Schedule"):
        await engine.schedules.create("reports")  # type: ignore[arg-type]
    assert await engine.schedules.list() == []


async def test_unknown_schedules_and_bad_ranges(make_engine: Any) -> None:
    engine, _ = await _engine(make_engine)
    for call in (engine.schedules.get, engine.schedules.pause, engine.schedules.resume,
                 engine.schedules.trigger):
        with pytest.raises(ScheduleNotFound, match="nope"):
            await call("nope")
    with pytest.raises(ScheduleNotFound):
        await engine.schedules.backfill("nope", utc("2030-01-01T00:00"),
                                        utc("2030-01-02T00:00"))
    with pytest.raises(InvalidConfiguration, match="schedule id"):
        await engine.schedules.pause("a\x00b")
    await engine.schedules.create(hourly())
    for start, end, named in [
            (datetime(2030, 1, 1), utc("2030-01-02T00:00"), "start"),
            (utc("2030-01-01T00:00"), "tomorrow", "end"),
            (utc("2030-01-02T00:00"), utc("2030-01-01T00:00"), "before"),
            (utc("2030-01-01T00:00"), utc("2032-01-01T00:00"), "split the range")]:
        with pytest.raises(InvalidConfiguration, match=named):
            await engine.schedules.backfill("reports", start, end)  # type: ignore[arg-type]
    assert await run_ids(engine, "reports@") == []


async def test_a_schedule_created_by_another_process_fires(make_engine: Any) -> None:
    _worker, clock = await _engine(make_engine)  # a worker, idle
    client: Engine = await make_engine(report, clock=clock, worker=False)
    await client.schedules.create(hourly())  # the worker learns it from the database
    clock.advance(30)
    info = await fired(client, "reports", 1)
    assert await client.handle(info.last_run_id or "").result(timeout=10) == "ops/24"
    await client.schedules.pause("reports")
    await client.schedules.resume("reports")
    clock.advance(timedelta(hours=1))
    assert (await fired(client, "reports", 2)).last_fired == utc("2030-06-01T11:00")


def test_the_sync_facade_manages_schedules(db_url: str) -> None:
    clock = VirtualClock(START)
    with SyncEngine(db_url, workflows=[report], clock=clock, shutdown_grace=0.5) as engine:
        info = engine.schedules.create(hourly())
        assert engine.schedules.get("reports") == info
        assert [i.id for i in engine.schedules.list()] == ["reports"]
        engine.schedules.pause("reports")
        engine.schedules.resume("reports")
        assert engine.schedules.trigger("reports").result(timeout=10) == "ops/24"
        [h] = engine.schedules.backfill("reports", utc("2030-05-01T00:00"),
                                        utc("2030-05-01T01:00"))
        assert h.id == run_id("reports", utc("2030-05-01T00:00"))
        assert h.result(timeout=10) == "ops/24"
        clock.advance(30)
        delay = 0.002
        while engine.schedules.get("reports").fired < 1:  # the worker fires on its own loop
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        assert engine.handle(run_id("reports", utc("2030-06-01T10:00"))).result(
            timeout=10) == "ops/24"
        assert engine.schedules.delete("reports") is True


async def test_a_schedule_this_host_cannot_read_does_not_stop_the_others(
        make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    engine, clock = await _engine(make_engine)
    # As if written by a newer release with a syntax this one's cron library refuses.
    now = clock.time()
    await engine.store.insert_schedule(ScheduleRow(
        "future", "report", "1", '{"team":"x"}', "0 * * * * * 2031", "UTC", "skip", 60.0,
        False, now + 1, None, None, None, 0, 0, 0, 0, now, now))
    await engine.schedules.create(hourly())
    clock.advance(30)
    info = await fired(engine, "reports", 1)
    assert info.last_fired == utc("2030-06-01T10:00")
    assert "schedule 'future' cannot be fired here" in caplog.text
    assert (await engine.schedules.get("future")).fired == 0
