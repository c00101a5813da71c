"""Three worker processes on one PostgreSQL database, thousands of timers due in the same
second: every timer fires exactly once (counted inside the runs, in the ledger their step
writes), whichever worker fires it, through batch firing and runs waiting in memory."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from perdure import Engine
from perdure.testing import wait_for_status
from tests.crash.app_timers import WORKFLOWS, alarm
from tests.crash.harness import Cluster

pytestmark = [pytest.mark.crash, pytest.mark.postgres]

N = 2000
LEAD = 5.0  # seconds from the first start to the first timer


async def test_three_workers_fire_every_timer_exactly_once(tmp_path: Path, pg: Any) -> None:
    name = pg.new_database()
    cluster = Cluster(tmp_path / "cluster", app="tests.crash.app_timers", target="WORKFLOWS")
    cluster.url = pg.url(name)
    try:
        workers = [cluster.start(w) for w in ("a", "b", "c")]
        for w in workers:
            await w.ready()
        async with Engine(cluster.url, workflows=WORKFLOWS, worker=False) as client:
            t0 = time.time() + LEAD
            ids = [f"alarm-{i}" for i in range(N)]
            for lo in range(0, N, 500):
                await asyncio.gather(*(client.start(alarm, t0 + i / N, id=ids[i])
                                       for i in range(lo, min(N, lo + 500))))
            async with asyncio.timeout(45):
                for rid in ids:
                    await wait_for_status(client.handle(rid), "completed", timeout=45)
            conn = await asyncpg.connect(cluster.url)
            try:
                fired = await conn.fetch("SELECT run_id, status, attempts FROM perdure_journal "
                                         "WHERE kind = 'sleep'")
            finally:
                await conn.close()
        rang = [e for e in cluster.ledger() if e["name"] == "rang"]
        counts = Counter(e["run"] for e in rang)
        assert sorted(counts) == sorted(ids)
        assert set(counts.values()) == {1}, [r for r, c in counts.items() if c > 1][:10]
        assert sorted(r["run_id"] for r in fired) == sorted(ids)  # one timer entry per run
        assert {(r["status"], r["attempts"]) for r in fired} == {("completed", 1)}
        assert len({e["pid"] for e in rang}) >= 2, "the timers fired on a single worker"
    finally:
        cluster.close()
        pg.drop(name)
