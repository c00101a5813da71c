"""Workers whose clocks disagree: the database's clock is the reference (DESIGN.md, "Time").

Each engine gets a :class:`SkewedClock`, a wall clock set ``skew`` seconds off, as a host out
of time synchronisation would be. The engine measures that offset against the database when it
opens and works in corrected time, so leases, timers and deadlines agree across the fleet.
Times are checked on the database's own clock (``Storage.database_time()``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

import perdure
from perdure import Engine, RunStatus, SystemClock, VirtualClock, step, workflow
from perdure.clock import CorrectedClock
from perdure.storage.port import Storage
from perdure.testing import wait_for_status

SKEW = 30.0
#: how far from its due time (on the database's clock) a timer may fire
ON_TIME = 0.1


class SkewedClock(SystemClock):
    """Real time, ``skew`` seconds off (a host whose clock drifted or jumped)."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def time(self) -> float:
        """The host's idea of now."""
        return time.time() + self.skew


# The database the steps stamp their times with (set by each test).
reference: list[Storage] = []


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds (re-checked every 20 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


@step
async def db_now() -> float:
    return await reference[0].database_time()


# -- leases ---------------------------------------------------------------------------------

# Made afresh by each test: an event belongs to the loop that first waits on it.
gates: dict[str, asyncio.Event] = {}
attempts: list[str] = []


@step
async def long_step() -> str:
    attempts.append("long")
    gates["entered"].set()
    await gates["release"].wait()
    return "done"


@workflow
async def holds() -> str:
    return await long_step()


@workflow
async def quick() -> str:
    return "quick"


async def test_a_fast_worker_does_not_steal_a_live_run(make_engine: Any) -> None:
    gates.update(entered=asyncio.Event(), release=asyncio.Event())
    attempts.clear()
    slow = await make_engine(holds, clock=SkewedClock(-SKEW), lease=1.0)
    handle = await slow.start(holds, id="held")
    await asyncio.wait_for(gates["entered"].wait(), 10)
    fast = await make_engine(holds, quick, clock=SkewedClock(+SKEW), lease=1.0)
    # The fast worker has been through claim cycles once it has run a new run.
    assert await (await fast.start(quick)).result(timeout=10) == "quick"
    first = await slow.store.get_run("held")
    assert first is not None and first.lease_until is not None

    async def renewed_past_first_lease() -> bool:
        row = await slow.store.get_run("held")
        assert row is not None
        assert (row.owner, row.epoch) == (slow.worker_id, 1), "the live run was stolen"
        assert row.lease_until is not None and first.lease_until is not None
        return row.lease_until > first.lease_until + 1.0

    # More than a whole lease of real time passes: the fast worker, which wakes at each lease
    # expiry to look for lapsed runs, finds the slow worker's renewals every time.
    await until(renewed_past_first_lease, "the slow worker's lease renewed")
    gates["release"].set()
    assert await handle.result(timeout=10) == "done"
    assert attempts == ["long"]
    assert (await handle.status()).status is RunStatus.COMPLETED


# -- timers ---------------------------------------------------------------------------------

@workflow
async def naps(seconds: float) -> tuple[float, float]:
    before = await db_now()
    await perdure.sleep(seconds)
    return before, await db_now()


@pytest.mark.parametrize(("start_skew", "fire_skew"), [(-SKEW, +SKEW), (+SKEW, -SKEW)],
                         ids=["slow-starts-fast-fires", "fast-starts-slow-fires"])
async def test_a_timer_fires_on_time_whichever_worker_fires_it(
        make_engine: Any, start_skew: float, fire_skew: float) -> None:
    client = await make_engine(worker=False)
    reference[:] = [client.store]
    starter = await make_engine(naps, clock=SkewedClock(start_skew), park_after=0.2)
    handle = client.handle((await starter.start(naps, 2.0)).id)
    await wait_for_status(handle, "waiting")
    parked_by = await reference[0].database_time()
    await starter.close()
    # The other worker takes the parked run and fires its timer.
    await make_engine(naps, clock=SkewedClock(fire_skew))
    before, after = await handle.result(timeout=10)
    [_, timer, _] = await handle.journal()
    assert timer.kind == "sleep" and timer.due_at is not None and timer.started_at is not None
    # The due time was set on the database's clock, not on the starting worker's...
    assert before - ON_TIME <= timer.started_at <= parked_by + ON_TIME
    assert timer.due_at == pytest.approx(timer.started_at + 2.0)
    # ...and the timer fired within ON_TIME of it, measured on the database's clock.
    assert -ON_TIME / 2 <= after - timer.due_at <= ON_TIME


# -- claims and deadlines -------------------------------------------------------------------

async def test_a_slow_worker_claims_a_new_run_promptly(make_engine: Any) -> None:
    client = await make_engine(quick, worker=False, clock=SkewedClock(+SKEW))
    await make_engine(quick, clock=SkewedClock(-SKEW))
    handle = await client.start(quick)
    assert await handle.result(timeout=3) == "quick"


@workflow
async def dozes(seconds: float) -> str:
    await perdure.sleep(seconds)
    return "slept"


async def test_a_deadline_counts_on_the_database_clock(make_engine: Any) -> None:
    client = await make_engine(dozes, worker=False, clock=SkewedClock(-SKEW))
    await make_engine(dozes, clock=SkewedClock(+SKEW))
    # Twenty seconds away is not already past for a worker whose clock is ahead...
    roomy = await client.start(dozes, 0.1, deadline=timedelta(seconds=20))
    assert await roomy.result(timeout=10) == "slept"
    # ...and a short deadline still cancels on time, not early (or 60 s late).
    reference[:] = [client.store]
    started = await client.store.database_time()
    tight = await client.start(dozes, 30.0, deadline=timedelta(seconds=1.0))
    info = await wait_for_status(tight, "cancelled", timeout=10)
    assert info.status is RunStatus.CANCELLED
    ended = await client.store.database_time()
    assert 1.0 - ON_TIME / 2 <= ended - started <= 3.0


# -- measuring the offset -------------------------------------------------------------------

async def test_a_large_offset_is_measured_and_logged(
        make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="perdure")
    engine = await make_engine(quick, clock=SkewedClock(+SKEW))
    db = await engine.store.database_time()
    assert engine.clock.time() == pytest.approx(db, abs=ON_TIME)
    [record] = [r for r in caplog.records if "clock" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "30.0" in record.getMessage() and "ahead of" in record.getMessage()
    caplog.clear()
    await make_engine(quick, clock=SkewedClock(0.0))
    assert not [r for r in caplog.records if "clock" in r.getMessage()]


async def test_a_virtual_clock_is_not_corrected(make_engine: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # Time skipping: the test moves the clock on purpose, years away from the database's.
    caplog.set_level(logging.WARNING, logger="perdure")
    clock = VirtualClock()
    engine = await make_engine(quick, clock=clock)
    assert engine.clock is clock
    assert not [r for r in caplog.records if "clock" in r.getMessage()]


async def test_the_offset_is_measured_again_when_the_clock_jumps(
        make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="perdure")
    host = SkewedClock(0.0)
    # A worker re-measures every heartbeat (here 0.25 s).
    engine: Engine = await make_engine(quick, clock=host, lease=1.0)
    assert isinstance(engine.clock, CorrectedClock) and abs(engine.clock.offset) < ON_TIME
    host.skew = -SKEW  # the host resumes from a suspend with a stale clock

    async def corrected() -> bool:
        return abs(engine.clock.time() - await engine.store.database_time()) < ON_TIME

    await until(corrected, "the jump corrected")
    assert engine.clock.offset == pytest.approx(SKEW, abs=ON_TIME)
    assert any("behind" in r.getMessage() for r in caplog.records)
    assert await (await engine.start(quick)).result(timeout=5) == "quick"
