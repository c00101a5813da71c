"""Push between real worker processes on PostgreSQL: a wake-up that another process commits
reaches the worker that waits for it at once, never by the 1 s safety-net poll; and after a
server restart, waits resume within a second."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from perdure import Engine, RunStatus
from perdure.testing import wait_for_status
from tests.pg.app import WORKFLOWS, parent
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
