"""Timers by the thousand: runs waiting in memory for a near timer hold no concurrency slot,
and the claims fire due timers in batches.

Batch firing: the claim that takes parked runs whose timers are due journals their firing,
for the whole batch, in its own transaction. A worker that dies right after that claim (before
it replays anything) leaves every timer fired once; the runs go on from there on another
worker, and runs with a cancel to deliver at the timer are left to their replay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import perdure
from perdure import Engine, RunStatus, VirtualClock, step, workflow
from perdure.storage.port import wf_key
from perdure.testing import wait_for_journal, wait_for_status

N = 150
executed: dict[int, int] = {}


@step
async def after_nap(i: int) -> int:
    executed[i] = executed.get(i, 0) + 1
    return i


@workflow
async def batch_nap(i: int) -> int:
    await perdure.sleep(timedelta(minutes=1))
    return await after_nap(i)


@workflow
async def short_nap(i: int) -> int:
    await perdure.sleep(2)  # within park_after: waited for in memory
    return await after_nap(i)


async def test_runs_waiting_for_a_near_timer_hold_no_slot(
        make_engine: Any, clock: VirtualClock) -> None:
    executed.clear()
    engine = await make_engine(short_nap, clock=clock, concurrency=2)
    handles = [await engine.start(short_nap, i) for i in range(6)]
    # All six reach their timer though only two slots exist: a waiting run gave its slot back.
    for h in handles:
        await wait_for_journal(h, lambda j: [(e.kind, e.status) for e in j] == [
            ("sleep", "waiting")])
    assert len(engine._worker.runner.contexts) == 6  # held in memory, not parked
    sleepers = engine._worker.runner.sleepers
    for _ in range(1000):  # (in memory: each turn of the loop lets one more reach its timer)
        if sleepers.count == 6:
            break
        await asyncio.sleep(0)
    assert sleepers.count == 6
    await asyncio.sleep(0)  # the timers' tasks register with the clock on their first turn
    clock.advance(timedelta(seconds=3))
    assert [await h.result(timeout=10) for h in handles] == list(range(6))
    assert executed == {i: 1 for i in range(6)}


async def _journals(engine: Engine, ids: list[str]) -> dict[str, list[Any]]:
    found = await asyncio.gather(*(engine.handle(r).journal() for r in ids))
    return dict(zip(ids, found, strict=True))


async def test_a_batch_firing_journals_every_timer_once_across_a_crash(
        make_engine: Any, clock: VirtualClock) -> None:
    executed.clear()
    a = await make_engine(batch_nap, clock=clock)
    ids = [f"nap-{i}" for i in range(N)]
    handles = [await a.start(batch_nap, i, id=rid) for i, rid in enumerate(ids)]
    for h in handles:
        await wait_for_status(h, "waiting")
    await a.close()  # parked runs are rows: nothing in memory
    cancelled = ids[:3]
    client = await make_engine(batch_nap, clock=clock, worker=False)
    for rid in cancelled:
        await client.handle(rid).cancel()
    due = {rid: j[0].due_at for rid, j in (await _journals(client, ids)).items()}
    assert all(d is not None for d in due.values())

    # A worker claims them all when due (two batches), and dies before replaying any.
    clock.advance(timedelta(minutes=1, seconds=1))
    now = clock.time()
    taken: list[str] = []
    while len(taken) < N:
        got = await client.store.claim(worker="doomed", keys=[wf_key("batch_nap", "1")],
                                       limit=100, now=now, lease_until=now + 5)
        assert got, f"claimed {len(taken)} of {N}"
        taken += [r.id for r in got]
    assert sorted(taken) == sorted(ids)
    for rid, journal in (await _journals(client, ids)).items():
        shape = [(e.kind, e.status, e.attempts) for e in journal]
        if rid in cancelled:  # the replay delivers the cancel at the timer
            assert shape == [("sleep", "waiting", 0)], rid
            continue
        assert shape == [("sleep", "completed", 1)], rid
        assert journal[0].due_at == due[rid]
        assert journal[0].finished_at == now

    b = await make_engine(batch_nap, clock=clock)
    clock.advance(timedelta(seconds=6))  # past the dead worker's leases
    for rid in ids:
        await wait_for_status(b.handle(rid), "completed", "cancelled", timeout=30)
    for rid, journal in (await _journals(b, ids)).items():
        shape = [(e.kind, e.status, e.attempts) for e in journal]
        if rid in cancelled:
            assert shape == [("sleep", "cancelled", 0)], rid
            assert (await b.handle(rid).status()).status is RunStatus.CANCELLED
            continue
        assert shape == [("sleep", "completed", 1), ("step", "completed", 1)], rid
        assert journal[0].due_at == due[rid]
        assert (await b.handle(rid).result(timeout=5)) == int(rid.split("-")[1])
    # The timer fired once (one entry, by the doomed claim); each step ran once.
    assert executed == {i: 1 for i in range(3, N)}


async def test_a_parked_timer_is_claimed_just_before_it_falls_due(
        make_engine: Any, clock: VirtualClock) -> None:
    executed.clear()
    engine = await make_engine(batch_nap, clock=clock)
    handle = await engine.start(batch_nap, 7)
    await wait_for_status(handle, "waiting")  # a one-minute sleep parks
    [entry] = await handle.journal()
    assert entry.due_at is not None
    clock.advance(timedelta(seconds=59.5))
    # Claimed ahead of its due time: replayed, and waiting in memory for its timer (no slot).
    await wait_for_status(handle, "running")
    sleepers = engine._worker.runner.sleepers
    for _ in range(1000):
        if sleepers.count == 1:
            break
        await asyncio.sleep(0)
    assert sleepers.count == 1
    await asyncio.sleep(0)  # the timer's task registers with the clock on its first turn
    assert [(e.kind, e.status) for e in await handle.journal()] == [("sleep", "waiting")]
    assert executed == {}
    clock.advance(timedelta(seconds=0.5))
    assert await handle.result(timeout=10) == 7
    fired = (await handle.journal())[0]
    assert (fired.status, fired.finished_at) == ("completed", entry.due_at)  # on time


async def test_a_delayed_start_is_not_claimed_ahead_of_time(
        make_engine: Any, clock: VirtualClock) -> None:
    executed.clear()
    engine = await make_engine(batch_nap, clock=clock)
    parked = await engine.start(batch_nap, 1)
    await wait_for_status(parked, "waiting")  # its timer falls due in one minute
    delayed = await engine.start(batch_nap, 2, delay=timedelta(minutes=1))
    clock.advance(timedelta(seconds=59.5))
    await wait_for_status(parked, "running")  # the claim looked ahead, and took this one
    assert (await delayed.status()).status is RunStatus.WAITING  # but not this one
    assert await delayed.journal() == []
    clock.advance(timedelta(seconds=0.5))
    assert await parked.result(timeout=10) == 1
    # Due now: claimed, it journals its own one-minute sleep and parks (advancing the clock
    # before then would move that sleep's due time, or lapse the claim's lease mid-run).
    await wait_for_journal(delayed, lambda j: [(e.kind, e.status) for e in j] == [
        ("sleep", "waiting")])
    await wait_for_status(delayed, "waiting")
    clock.advance(timedelta(minutes=1, seconds=1))
    assert await delayed.result(timeout=10) == 2
