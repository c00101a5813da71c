"""A busy worker notices what other processes commit: a cancel request for a run it drives, a
signal to a run it holds in memory. (SQLite has no push between processes: the worker must look
for itself, and it must keep looking when it is busy.)"""

from __future__ import annotations

import asyncio
from typing import Any

import perdure
from perdure import Engine, RunStatus, step, workflow
from perdure.testing import wait_for_journal, wait_for_status
from tests.spawned import race_processes

#: how soon a worker busy with quick steps must notice (generous for a loaded machine; an
#: idle worker takes a few tens of milliseconds)
NOTICE_WITHIN = 1.0


@step
async def tick(i: int) -> int:
    return i


@workflow
async def spin(n: int) -> int:
    """A long run of quick steps."""
    for i in range(n):
        await tick(i)
    return n


@workflow
async def blip() -> int:
    return await tick(0)


@workflow
async def wait_go() -> str:
    # The timeout makes the wait visible in the journal; it is far beyond park_after, and
    # park_after is far beyond the test: the run waits in memory the whole time.
    return str(await perdure.wait_for_signal("go", timeout=3600))


def client(url: str, run_id: str, action: str, barrier: Any, out: Any) -> None:
    """Another process: cancel or signal ``run_id``, then report."""

    async def main() -> None:
        async with Engine(url, worker=False) as engine:
            if action == "cancel":
                assert await engine.cancel(run_id)
            else:
                assert await engine.signal(run_id, "go", "from afar")

    asyncio.run(main())
    out.put(action)


async def test_a_busy_worker_notices_a_cancel_and_a_signal_from_another_process(
        make_engine: Any, db_url: str) -> None:
    engine = await make_engine(spin, blip, wait_go, park_after=30)
    busy = await engine.start(spin, 10**9)
    await wait_for_journal(busy, lambda j: len(j) >= 50)
    waiting = await engine.start(wait_go)
    await wait_for_journal(waiting, lambda j: [e.status for e in j] == ["waiting"])
    done = asyncio.Event()

    async def settle_runs_all_the_time() -> None:
        # Other runs come and go, as on any busy worker: each one settling wakes the claim
        # loop. (A flag, not cancel(): asyncio.wait_for in Python 3.11 may swallow a
        # cancellation that races with its inner wait.)
        while not done.is_set():
            await (await engine.start(blip)).result()

    churn = asyncio.create_task(settle_runs_all_the_time())
    try:
        await race_processes(client, [(db_url, waiting.id, "signal")])
        await wait_for_status(waiting, RunStatus.COMPLETED, timeout=NOTICE_WITHIN)
        assert await waiting.result() == "from afar"

        await race_processes(client, [(db_url, busy.id, "cancel")])
        await wait_for_status(busy, RunStatus.CANCELLED, timeout=NOTICE_WITHIN)
    finally:
        done.set()
        await asyncio.wait_for(churn, 10)
