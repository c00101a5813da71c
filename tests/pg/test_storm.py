"""A storm of killed connections: ``pg_terminate_backend`` on every session of two worker
processes, again and again, while 200 runs execute. Infrastructure errors are not the
workflows' errors: every run completes, with an exactly-once journal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from perdure import Engine
from tests.pg.app import WORKFLOWS, chain
from tests.pg.conftest import Database, Workers

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(150)]

RUNS, STEPS = 200, 8
STORM_SECONDS = 4.0


async def _terminate_all_but_me(raw: Any) -> int:
    killed: int = await raw.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'")
    return killed


async def test_a_terminate_storm_fails_no_run(db: Database, workers: Workers, raw: Any) -> None:
    procs = [workers.start(db.url, step_ms=20, concurrency=RUNS) for _ in range(2)]
    for w in procs:
        await w.ready()
    ids = [f"run-{i:03}" for i in range(RUNS)]
    async with Engine(db.url, workflows=WORKFLOWS, worker=False) as client:
        await asyncio.gather(*(client.start(chain, STEPS, id=i) for i in ids))
    deadline = time.monotonic() + 30
    while len(workers.executions()) < RUNS:  # mid-flight: every run is under way
        assert time.monotonic() < deadline, workers.describe()
        await asyncio.sleep(0.01)

    killed = 0
    storm_ends = time.monotonic() + STORM_SECONDS
    while time.monotonic() < storm_ends:
        killed += await _terminate_all_but_me(raw)
        await asyncio.sleep(0.05)
    print(f"\nterminated {killed} sessions in {STORM_SECONDS} s")
    assert killed > 50

    deadline = time.monotonic() + 90
    while True:
        counts = dict(await raw.fetch(
            "SELECT status, count(*) FROM perdure_runs GROUP BY status"))
        if counts.get("completed") == RUNS:
            break
        assert "failed" not in counts and "blocked" not in counts, (counts, workers.describe())
        assert time.monotonic() < deadline, (counts, workers.describe())
        await asyncio.sleep(0.1)
    # Exactly once: each step of each run journaled once, completed; the right results.
    bad = await raw.fetch(
        "SELECT run_id, array_agg(seq ORDER BY seq) FROM perdure_journal GROUP BY run_id "
        "HAVING array_agg(seq ORDER BY seq) <> $1::int[] "
        "OR bool_or(status <> 'completed' OR kind <> 'step')", list(range(STEPS)))
    assert bad == []
    assert await raw.fetchval("SELECT count(DISTINCT run_id) FROM perdure_journal") == RUNS
    assert await raw.fetchval("SELECT count(*) FROM perdure_runs WHERE output <> $1",
                              str(sum(range(STEPS)))) == 0
    assert set(workers.executions()) == {f"{i}:{s}" for i in ids for s in range(STEPS)}
    assert all(w.proc.poll() is None for w in procs), workers.describe()
