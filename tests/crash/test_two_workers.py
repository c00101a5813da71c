"""Two worker processes on one SQLite file: sharing the work, and one of them SIGKILLed."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from perdure import Engine, RunStatus
from tests.crash.harness import Cluster, executions, reference, settle_all

pytestmark = pytest.mark.crash


async def test_kill_one_of_two_workers_mid_flight(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    ids = [f"r{i:02d}" for i in range(40)]
    ref, ref_ledger = await reference(tmp_path / "ref", [(i, "pipeline", (i,)) for i in ids])
    # Worker a does 12 side effects, then every step it runs hangs after its side effect: it
    # ends up holding 8 runs (its concurrency), each cut off mid-step.
    a = cluster.start("a", hang_after=12, concurrency=8)
    await a.ready()
    for run_id in ids:
        await client.start("pipeline", run_id, id=run_id)
    events = await cluster.wait_events(
        lambda ev: sum(e["event"] == "hung" for e in ev) >= 8, what="8 runs hung on worker a")
    # Worker b works on the other runs (a still holds its leases: b must not take them)...
    b = cluster.start("b", concurrency=8, notify=True)
    events = await cluster.wait_events(
        lambda ev: sum(e["event"] == "did" and e["pid"] == b.pid for e in ev) >= 20,
        what="worker b at work")
    done_by_b_at_kill = sum(e["event"] == "did" and e["pid"] == b.pid for e in events)
    # ... when a dies.
    a.kill()
    outcomes = await settle_all(client, ids)

    assert outcomes == ref
    assert all(o.status is RunStatus.COMPLETED for o in outcomes.values())
    hung = [(e["run"], e["name"]) for e in events if e["event"] == "hung"]
    assert len(hung) == len(set(hung)) == 8
    entries = cluster.ledger()
    # Exactly once everywhere, except the 8 steps cut off after their side effect: twice.
    assert executions(entries) == executions(ref_ledger) + Counter(hung)
    assert {e["pid"] for e in entries} == {a.pid, b.pid}
    assert sum(e["pid"] == b.pid for e in entries) > done_by_b_at_kill  # b went on after
    for run, name in hung:
        assert [e["pid"] for e in entries if (e["run"], e["name"]) == (run, name)] == \
            [a.pid, b.pid]


async def test_two_workers_run_100_runs_each_step_exactly_once(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    ids = [f"w{i:03d}" for i in range(100)]
    ref, ref_ledger = await reference(tmp_path / "ref", [(i, "pipeline", (i,)) for i in ids])
    a = cluster.start("a", concurrency=10, work_ms=2)
    b = cluster.start("b", concurrency=10, work_ms=2)
    await asyncio.gather(a.ready(), b.ready())
    for run_id in ids:
        await client.start("pipeline", run_id, id=run_id)
    outcomes = await settle_all(client, ids)

    assert outcomes == ref
    assert all(o.status is RunStatus.COMPLETED for o in outcomes.values())
    entries = cluster.ledger()
    counts = executions(entries)
    assert counts == executions(ref_ledger)
    assert set(counts.values()) == {1} and len(counts) == 500
    assert len({e["key"] for e in entries}) == 500
    by_worker = Counter(e["pid"] for e in entries)
    assert set(by_worker) <= {a.pid, b.pid}
    # Both should have taken a share; one taking everything is legal, only less interesting.
    print(f"side effects by worker: a={by_worker[a.pid]} b={by_worker[b.pid]}")
    # A run is driven by one worker from start to end when nobody dies.
    runs_by = {run: {e["pid"] for e in entries if e["run"] == run} for run in ids}
    assert all(len(p) == 1 for p in runs_by.values())
