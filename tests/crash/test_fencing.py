"""A worker that is frozen past its lease, and a worker drained by SIGTERM, in real processes.

* Frozen (SIGSTOP, so its pid stays alive and only the lease can free its run): another worker
  takes the run when the lease lapses and finishes it; when the frozen worker wakes up in the
  middle of its step, its writes are fenced off by the epoch and it stops driving the run.
* SIGTERM: the worker drains, hands back the run it cannot finish within the grace period,
  and another worker takes it at once rather than when the lease would lapse.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from perdure import Engine, RunStatus
from tests.crash.harness import Cluster, executions, reference, settle_all

pytestmark = pytest.mark.crash


def _hung(events: list[dict[str, object]]) -> bool:
    return any(e["event"] == "hung" for e in events)


async def test_worker_frozen_past_its_lease_is_fenced_off(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    run_id = "frozen"
    ref, ref_ledger = await reference(tmp_path / "ref", [(run_id, "pipeline", ("t",))])
    await client.start("pipeline", "t", id=run_id)
    # a stops itself (SIGSTOP) right after the side effect of s2, before its journal write.
    a = cluster.start("a", hang=["s2@after"], stop=True, target="SHORT_LEASE",
                      log_level="INFO")
    await cluster.wait_events(_hung, what="worker a frozen in s2")
    await a.wait_state("T")
    epoch_a = (await client.store.get_run(run_id)).epoch  # type: ignore[union-attr]

    b = cluster.start("b", target="SHORT_LEASE")
    await b.ready()
    outcome = (await settle_all(client, [run_id]))[run_id]  # b, once a's 1 s lease lapsed
    assert outcome == ref[run_id]
    row = await client.store.get_run(run_id)
    assert row is not None and row.epoch == epoch_a + 1
    ledger_before = cluster.ledger()

    os.kill(a.pid, signal.SIGCONT)  # a's step returns and a tries to journal it
    await a.wait_log(f"lost run_id={run_id} ")  # the run event, whichever way a learns it

    assert a.proc.poll() is None  # losing a run does not kill the worker
    assert (await settle_all(client, [run_id]))[run_id] == outcome  # nothing was overwritten
    entries = cluster.ledger()
    assert entries == ledger_before  # a did not go on to s3
    expected = executions(ref_ledger)
    expected[(run_id, "s2")] += 1
    assert executions(entries) == expected
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("s1", a.pid), ("s2", a.pid), ("s2", b.pid), ("s3", b.pid), ("s4", b.pid),
        ("s5", b.pid)]


async def test_sigterm_hands_the_run_back_at_once(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    run_id = "drained"
    ref, ref_ledger = await reference(tmp_path / "ref", [(run_id, "pipeline", ("t",))])
    await client.start("pipeline", "t", id=run_id)
    a = cluster.start("a", hang=["s3@after"], grace=0.2)
    a_id = await a.ready()
    await cluster.wait_events(_hung, what="worker a hanging in s3")
    b = cluster.start("b")
    await b.ready()

    a.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(a.proc.wait, 10) == 0
    # a's lease (10 s) has not lapsed: the run is free only because a handed it back.
    row = await client.store.get_run(run_id)
    assert row is not None and row.owner != a_id
    assert row.status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.COMPLETED)
    outcome = (await settle_all(client, [run_id], timeout=5))[run_id]

    assert outcome == ref[run_id]
    entries = cluster.ledger()
    expected = executions(ref_ledger)
    expected[(run_id, "s3")] += 1  # cut off after its side effect: at-least-once
    assert executions(entries) == expected
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("s1", a.pid), ("s2", a.pid), ("s3", a.pid), ("s3", b.pid), ("s4", b.pid),
        ("s5", b.pid)]
