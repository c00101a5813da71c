"""Processes racing each other: idempotent starts released by one barrier, and a worker
opening a brand-new database while another process holds its write lock."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from typing import Any

import pytest

from perdure import Engine, RunStatus
from tests.crash.app import WORKFLOWS, race_start
from tests.crash.harness import Cluster, executions, settle_all
from tests.spawned import race_processes

pytestmark = pytest.mark.crash

ROUNDS = 10


async def _race(url: str, ids: list[str]) -> list[tuple[int, Any]]:
    """Two spawned processes start every id at the same moment; what each reported."""
    return await race_processes(race_start, [(url, ids), (url, ids)])


async def _check_each_ran_once(cluster: Cluster, client: Engine, ids: list[str]) -> None:
    runs = await client.list_runs(limit=1000)
    assert sorted(r.id for r in runs) == sorted(ids)  # exactly one run per id
    outcomes = await settle_all(client, ids)
    for run_id in ids:
        assert outcomes[run_id].status is RunStatus.COMPLETED
        assert outcomes[run_id].result == [f"s1({run_id}) key={run_id}:0",
                                           f"s2({run_id}) key={run_id}:1"]
        assert [(kind, name, status, attempts)
                for _, kind, name, status, attempts, *_ in outcomes[run_id].journal] == \
            [("step", "s1", "completed", 1), ("step", "s2", "completed", 1)]
    counts = executions(cluster.ledger())
    assert counts == {(run_id, s): 1 for run_id in ids for s in ("s1", "s2")}


async def test_same_id_started_at_once_from_two_processes_runs_once(
        cluster: Cluster, client: Engine) -> None:
    ids = [f"same-{i}" for i in range(ROUNDS)]
    worker = cluster.start("w")  # already driving while the second start of each id arrives
    await worker.ready()
    reports = await _race(cluster.url, ids)
    assert [started for _, started in reports] == [ids, ids]
    await _check_each_ran_once(cluster, client, ids)


async def test_worker_opening_a_new_database_waits_for_the_process_creating_it(
        cluster: Cluster) -> None:
    # This process plays the first of two processes opening a new database: it holds the
    # write lock, as it does while creating the schema. (Two real processes racing to open a
    # new file hit this in a few percent of attempts; holding the lock makes it certain.)
    holder = sqlite3.connect(cluster.db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        worker = cluster.start("w")
        # It must wait for the lock (its busy timeout is 30 s), not die: 2 s to show which.
        exit_code = await asyncio.to_thread(_exit_code_within, worker.proc, 2.0)
        holder.execute("COMMIT")
    finally:
        holder.close()
    assert exit_code is None, f"the worker died opening the database\n{worker.tail()}"
    await worker.ready()
    async with Engine(cluster.url, workflows=WORKFLOWS, worker=False) as client:
        await client.start("pipeline", "t", 2, id="after-the-lock")
        assert await client.handle("after-the-lock").result(timeout=10) == [
            "s1(t) key=after-the-lock:0", "s2(t) key=after-the-lock:1"]


def _exit_code_within(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None
