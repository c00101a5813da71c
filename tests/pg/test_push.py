"""Push between real worker processes on PostgreSQL: a wake-up that another process commits
reaches the worker that waits for it at once, never by the 1 s safety-net poll; and after a
server restart, waits resume within a second."""

from __future__ import annotations

import asyncio
import time

import pytest

from perdure import Engine, RunStatus
from perdure.testing import wait_for_status
from tests.pg.app import WORKFLOWS, collect, nap_until, parent
from tests.pg.conftest import Database, Workers

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(120)]

#: the safety-net poll is 1 s; a push takes milliseconds (generous for a loaded machine)
PUSHED_WITHIN = 0.5


async def test_a_child_finishing_on_another_worker_wakes_its_lingering_parent(
        db: Database, workers: Workers) -> None:
    """Two workers with one slot each: the parent's worker is full while the parent waits
    in memory (``park_after`` 5 s), so the child runs on the other worker, and its end must
    reach the parent's worker by push."""
    procs = [workers.start(db.url, concurrency=1) for _ in range(2)]
    for w in procs:
        await w.ready()
    late: list[tuple[int, float]] = []
    async with Engine(db.url, workflows=WORKFLOWS, worker=False) as client:
        for i in range(10):
            handle = await client.start(parent, id=f"parent-{i}")
            await wait_for_status(handle, RunStatus.COMPLETED, timeout=8)
            child_done, resumed = await handle.result()
            if resumed - child_done > PUSHED_WITHIN:
                late.append((i, resumed - child_done))
    assert late == [], f"parents woken late (by a poll, not a push): {late}\n" \
                       f"{workers.describe()}"


#: how long the server stays down: long enough for every retry back-off to reach its cap
OUTAGE = 3.0
RESUMED_WITHIN = 1.0


@pytest.mark.parametrize("waits", ["in memory", "parked"])
async def test_waits_resume_within_a_second_of_a_server_restart(
        db: Database, workers: Workers, waits: str) -> None:
    """A run waiting for a signal sent just after the server is back, and a run whose timer
    fell due while the server was down: both finish within a second of the server's return
    (their worker's connections, its listener, its claims and its retries all come back on
    their own). ``in memory``: the runs wait in the worker's memory (park_after 5 s);
    ``parked``: they park at once (rows, claimed back when woken or due)."""
    proc = workers.start(db.url, target="tests.pg.app:" + (
        "WORKFLOWS" if waits == "in memory" else "PARKING"))
    await proc.ready()
    server = db.cluster.server
    async with Engine(db.url, workflows=WORKFLOWS, worker=False) as client:
        waiting = await client.start(collect, 1, id="waits-for-signal")
        due = time.time() + 1.0
        napping = await client.start(nap_until, due, id="timer-due-while-down")
        status = RunStatus.RUNNING if waits == "in memory" else RunStatus.WAITING
        await wait_for_status(waiting, status)
        await wait_for_status(napping, status)
        server.halt()
        try:
            # The outage itself, not a wait for a state: the timer falls due meanwhile.
            await asyncio.sleep(OUTAGE)
        finally:
            server.resume()
        back = time.time()
        assert await client.signal(waiting.id, "item", "after the restart")
        await wait_for_status(waiting, RunStatus.COMPLETED, timeout=10)
        await wait_for_status(napping, RunStatus.COMPLETED, timeout=10)
        signalled = (await client.status(waiting.id)).updated_at.timestamp() - back
        woke = await napping.result() - back
    assert signalled <= RESUMED_WITHIN and woke <= RESUMED_WITHIN, \
        (signalled, woke, workers.describe())
