"""Retention: old finished runs are pruned with every row of theirs, in batches, by one worker
at a time — and never a run that is not finished, nor a finished child whose parent is not."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    Engine,
    InvalidConfiguration,
    NonRetryable,
    RunNotFound,
    VirtualClock,
    WorkflowFailed,
    step,
    workflow,
)
from perdure.testing import wait_for_status

DAY = 86400.0
#: every table that holds rows of a run, by its run id column
PER_RUN = {"runs": "id", "journal": "run_id", "journal_history": "run_id", "resumes": "run_id",
           "signals": "run_id", "tags": "run_id"}


@step
async def work(n: int) -> int:
    return n + 1


@step
async def refuse() -> None:
    raise NonRetryable("no")


@workflow
async def simple(n: int) -> int:
    return await work(n)


@workflow
async def failing() -> None:
    await work(1)
    await refuse()


@workflow
async def signalled() -> str:
    return str(await perdure.wait_for_signal("go"))


@workflow
async def parent_waits(n: int) -> int:
    child = await perdure.start_child(simple, n, id=f"child-of-{perdure.run_id()}")
    value = await child.result()
    await perdure.wait_for_signal("done")
    return value


@workflow
async def blocks() -> None:
    await perdure.start_child(not_registered)


@workflow
async def not_registered() -> None:
    return None


#: what the `holds` run waits for in its step (a new event per test: one per event loop)
HELD: list[asyncio.Event] = []


@step
async def hold() -> None:
    await HELD[-1].wait()


@workflow
async def holds() -> None:
    await hold()


ALL = [simple, failing, signalled, parent_waits, blocks, holds]


async def count_rows(db_url: str, run_id: str) -> dict[str, int]:
    """How many rows of ``run_id`` each per-run table holds (read with the driver, not the
    engine: the point is what is left in the database)."""
    out: dict[str, int] = {}
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url[len("sqlite:///"):])
        try:
            for table, column in PER_RUN.items():
                out[table] = conn.execute(f"SELECT count(*) FROM perdure_{table} "
                                          f"WHERE {column} = ?", (run_id,)).fetchone()[0]
        finally:
            conn.close()
        return out
    import asyncpg

    pg = await asyncpg.connect(db_url)
    try:
        for table, column in PER_RUN.items():
            out[table] = await pg.fetchval(f"SELECT count(*) FROM perdure_{table} "
                                           f"WHERE {column} = $1", run_id)
    finally:
        await pg.close()
    return out


async def _gone(engine: Engine, run_id: str) -> bool:
    try:
        await engine.status(run_id)
    except RunNotFound:
        return True
    return False


async def test_prune_deletes_old_finished_runs_with_every_row_of_theirs(
        make_engine: Any, db_url: str, clock: VirtualClock) -> None:
    engine = await make_engine(*ALL, clock=clock)
    assert await (await engine.start(simple, 1, id="done", tags={"k": "v"})).result(
        timeout=10) == 2
    with pytest.raises(WorkflowFailed):
        await (await engine.start(failing, id="failed")).result(timeout=10)
    await engine.resume("failed")  # fails again: a resume and superseded entries to keep
    await wait_for_status(engine.handle("failed"), "failed")
    sig = await engine.start(signalled, id="signalled")
    await engine.signal("signalled", "extra")  # never consumed: left buffered
    await engine.signal("signalled", "go")
    await sig.result(timeout=10)
    before = {rid: await count_rows(db_url, rid) for rid in ("done", "failed", "signalled")}
    assert before["done"]["tags"] == 1 and before["done"]["journal"] == 1
    assert before["failed"]["resumes"] == 1 and before["failed"]["journal_history"] >= 1
    assert before["signalled"]["signals"] == 2
    clock.advance(31 * DAY)
    assert await (await engine.start(simple, 2, id="recent")).result(timeout=10) == 3

    assert await engine.prune("30d", dry_run=True) == 3
    assert await engine.status("done") is not None  # a dry run deletes nothing
    assert await engine.prune(timedelta(days=30), batch=2) == 3  # two batches
    for rid in ("done", "failed", "signalled"):
        assert await count_rows(db_url, rid) == dict.fromkeys(PER_RUN, 0), rid
    assert (await engine.status("recent")).status == "completed"
    assert [r.id for r in await engine.list_runs()] == ["recent"]
    assert await engine.prune("30d") == 0


async def test_retention_never_touches_unfinished_runs(make_engine: Any, db_url: str,
                                                       clock: VirtualClock) -> None:
    HELD.append(asyncio.Event())
    # park_after=0.01: the wait parks at once (status waiting) instead of lingering 5 real
    # seconds in memory first; nothing this test checks depends on the lingering
    engine = await make_engine(*ALL, clock=clock, park_after=0.01)
    client = await make_engine(not_registered, worker=False, clock=clock)
    await client.start(not_registered, id="pending")  # no worker has it: pending for good
    waiting = await engine.start(signalled, id="waiting")
    blocked = await engine.start(blocks, id="blocked")
    running = await engine.start(holds, id="running")
    parent = await engine.start(parent_waits, 5, id="parent")
    await wait_for_status(waiting, "waiting")
    await wait_for_status(blocked, "blocked")
    await wait_for_status(running, "running")
    await wait_for_status(engine.handle("child-of-parent"), "completed")
    await wait_for_status(parent, "waiting")
    clock.advance(400 * DAY)
    try:
        assert await engine.prune("1s", dry_run=True) == 0
        assert await engine.prune("1s") == 0
        for rid in ("pending", "waiting", "blocked", "running", "parent", "child-of-parent"):
            assert not await _gone(engine, rid), f"{rid} was pruned"
            assert (await count_rows(db_url, rid))["runs"] == 1
    finally:
        HELD[-1].set()
    await running.result(timeout=10)


async def test_a_finished_child_of_an_unfinished_parent_is_kept(make_engine: Any,
                                                                clock: VirtualClock) -> None:
    # park_after=0.01: the wait parks at once (status waiting) instead of lingering 5 real
    # seconds in memory first; nothing this test checks depends on the lingering
    engine = await make_engine(*ALL, clock=clock, park_after=0.01)
    parent = await engine.start(parent_waits, 5, id="parent")
    await wait_for_status(engine.handle("child-of-parent"), "completed")
    await wait_for_status(parent, "waiting")
    clock.advance(40 * DAY)
    assert await engine.prune("30d") == 0
    assert (await engine.status("child-of-parent")).status == "completed"
    await engine.signal("parent", "done")
    assert await parent.result(timeout=10) == 6
    # The parent is finished now (though fresh): its old child may go, the parent stays.
    assert await engine.prune("30d") == 1
    assert await _gone(engine, "child-of-parent") and not await _gone(engine, "parent")
    clock.advance(40 * DAY)
    assert await engine.prune("30d") == 1
    assert await _gone(engine, "parent")


async def test_prune_by_status(make_engine: Any, clock: VirtualClock) -> None:
    engine = await make_engine(*ALL, clock=clock)
    await (await engine.start(simple, 1, id="ok")).result(timeout=10)
    with pytest.raises(WorkflowFailed):
        await (await engine.start(failing, id="bad")).result(timeout=10)
    clock.advance(10 * DAY)
    assert await engine.prune("1d", status="failed", dry_run=True) == 1
    assert await engine.prune("1d", status=["failed"]) == 1
    assert await _gone(engine, "bad") and not await _gone(engine, "ok")
    assert await engine.prune("11d") == 0  # younger than that
    assert await engine.prune("1d", status="completed") == 1


async def test_a_worker_prunes_in_the_background_by_its_retention(
        make_engine: Any, clock: VirtualClock) -> None:
    policy = {"completed": timedelta(days=30), "failed": "90d"}  # cancelled: kept forever
    engine = await make_engine(*ALL, clock=clock, retention=policy)
    other = await make_engine(*ALL, clock=clock, retention=policy)
    await (await engine.start(simple, 1, id="ok")).result(timeout=10)
    with pytest.raises(WorkflowFailed):
        await (await engine.start(failing, id="bad")).result(timeout=10)
    clock.advance(31 * DAY)  # wakes the pruners (they sleep on the engine's clock)
    for _ in range(1000):
        if await _gone(engine, "ok"):
            break
        await asyncio.sleep(0.01)
    assert await _gone(engine, "ok")
    assert not await _gone(engine, "bad")  # failed runs: kept 90 days
    pruned = [e._pruner.pruned for e in (engine, other) if e._pruner is not None]
    assert sorted(pruned) == [0, 1], "one worker at a time prunes"


async def test_the_retention_lease_is_held_by_one_worker_at_a_time(make_engine: Any) -> None:
    engine = await make_engine()
    store = engine.store
    assert await store.take_lease("retention", "a", now=100.0, until=200.0)
    assert await store.take_lease("retention", "a", now=150.0, until=250.0)  # renewed
    assert not await store.take_lease("retention", "b", now=200.0, until=300.0)
    assert await store.take_lease("retention", "b", now=251.0, until=351.0)  # lapsed
    assert not await store.take_lease("retention", "a", now=300.0, until=400.0)
    await store.release_lease("retention", "a")  # not a's: nothing happens
    assert not await store.take_lease("retention", "a", now=300.0, until=400.0)
    await store.release_lease("retention", "b")
    assert await store.take_lease("retention", "a", now=300.0, until=400.0)


@pytest.mark.parametrize("call, match", [
    ({"older_than": "30"}, "not a duration"),
    ({"older_than": "soon"}, "not a duration"),
    ({"older_than": "-3d"}, "not a duration"),
    ({"older_than": 30}, "must be a duration"),
    ({"older_than": timedelta(days=-1)}, "must not be negative"),
    ({"older_than": "1d", "status": "waiting"}, "only finished runs are pruned"),
    ({"older_than": "1d", "status": "gone"}, "unknown status"),
    ({"older_than": "1d", "batch": 0}, "batch must be an int"),
])
async def test_bad_prune_calls_are_refused(make_engine: Any, call: dict[str, Any],
                                           match: str) -> None:
    engine = await make_engine(simple)
    await (await engine.start(simple, 1, id="kept")).result(timeout=10)
    with pytest.raises(InvalidConfiguration, match=match):
        await engine.prune(**call)
    assert not await _gone(engine, "kept")


@pytest.mark.parametrize("retention, match", [
    ("0s", "must be positive"),
    ("forever", "not a duration"),
    ({"waiting": "1d"}, "not a finished status"),
    ({"completed": 5}, "must be a duration"),
])
def test_bad_retention_is_refused_at_construction(retention: Any, match: str) -> None:
    with pytest.raises(InvalidConfiguration, match=match):
        Engine("sqlite:///:memory:", retention=retention)


FLAKY: list[bool] = []  # whether flaky_step fails now


@step
async def flaky_step() -> None:
    if FLAKY and FLAKY[-1]:
        raise NonRetryable("not yet")


@workflow
async def joins_late() -> int:
    child = await perdure.start_child(simple, 1, id="late-child")
    await flaky_step()
    return await child.result()


async def test_a_resumed_parent_whose_child_was_pruned_blocks(make_engine: Any,
                                                              clock: VirtualClock) -> None:
    """An operator pruned a failed parent's finished child, then resumed the parent: the
    child's result is gone, which blocks the parent (a deployment matter) instead of
    leaving it waiting for a child that will never finish."""
    engine = await make_engine(joins_late, simple, clock=clock)
    FLAKY.append(True)
    with pytest.raises(WorkflowFailed):
        await (await engine.start(joins_late, id="late")).result(timeout=10)
    await wait_for_status(engine.handle("late-child"), "completed")
    clock.advance(2 * DAY)
    assert await engine.prune("1d", status="completed") == 1
    FLAKY.append(False)
    await engine.resume("late")
    info = await wait_for_status(engine.handle("late"), "blocked")
    assert info.blocked_reason is not None and "no longer exists" in info.blocked_reason
