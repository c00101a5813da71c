"""Signals across a SIGKILL: buffered while no worker lives, consumed once, in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, RunStatus, VirtualClock, WorkflowHandle
from perdure.testing import wait_for_journal, wait_for_status
from tests.crash.harness import (
    Cluster,
    settle_all,
)
from tests.crash.waits.helpers import (
    PAYLOAD,
    Drive,
    check_journal_once,
    check_ledger,
    has_entry,
    hung_in,
    only_entry,
    pids,
    reference,
    signal_rows,
)

pytestmark = pytest.mark.crash


# -- signals --------------------------------------------------------------------------------

def _signal_when_waiting(name: str, payload: Any) -> Drive:
    async def drive(engine: Engine, handle: WorkflowHandle[Any],
                    clock: VirtualClock | None) -> None:
        await wait_for_journal(handle, has_entry("signal", name))
        await handle.signal(name, payload)

    return drive


@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parked", "in-memory"])
async def test_signal_sent_while_no_worker_lives_is_buffered_and_consumed_once(
        cluster: Cluster, client: Engine, tmp_path: Path, target: str) -> None:
    run_id = f"buffered-{target}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "approval", ("t",),
                                      target=target, drive=_signal_when_waiting("go", PAYLOAD))
    handle = await client.start("approval", "t", id=run_id)
    a = cluster.start("a", target=target)
    await wait_for_journal(handle, has_entry("signal", "go", "waiting"))
    if target == "PARK":
        await wait_for_status(handle, "waiting")
    else:
        assert (await handle.status()).status is RunStatus.RUNNING  # held by a

    a.kill()
    assert await handle.signal("go", PAYLOAD) is True
    # Buffered, not consumed: no worker is alive.
    assert [r[3] for r in signal_rows(cluster.db, run_id)] == [None]
    assert [(e.kind, e.status) for e in await handle.journal()] == [
        ("step", "completed"), ("signal", "waiting")]
    b = cluster.start("b", target=target)
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.result[1] == PAYLOAD
    check_journal_once(outcome)
    journal = await handle.journal()
    [sig] = [e for e in journal if e.kind == "signal"]
    assert (sig.seq, sig.status) == (1, "completed")
    assert [r[3] for r in signal_rows(cluster.db, run_id)] == [1]  # consumed once, by seq 1
    entries = cluster.ledger()
    check_ledger(entries, ref_ledger)
    assert [(e["name"], e["pid"]) for e in entries] == [("sig_before", a.pid),
                                                        ("use_signal", b.pid)]


@pytest.mark.parametrize(("target", "where"), [("PARK", "after"), ("PARK", "before"),
                                               ("HOLD", "after")],
                         ids=["parked-after", "parked-before", "in-memory-after"])
async def test_signal_consumed_then_killed_in_the_consuming_step(
        cluster: Cluster, client: Engine, tmp_path: Path, target: str, where: str) -> None:
    run_id = f"consumed-{target}-{where}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "approval", ("t",),
                                      target=target, drive=_signal_when_waiting("go", PAYLOAD))
    a = cluster.start("a", target=target, hang=[f"use_signal@{where}"])
    # a is up before the run exists (its cross-process change check has its baseline)
    await a.ready()
    handle = await client.start("approval", "t", id=run_id)
    await wait_for_journal(handle, has_entry("signal", "go", "waiting"))
    if target == "PARK":
        await wait_for_status(handle, "waiting")
    assert await handle.signal("go", PAYLOAD, idempotency_key="mail-1") is True
    [event] = await cluster.wait_events(hung_in("use_signal"), what="hang in the consuming step")
    assert only_entry(await handle.journal(), "signal", "go").status == "completed"

    a.kill()
    # The client retries its send (a no-op), and another signal of the same name arrives:
    # the replay must return the journaled payload, not consume anything.
    assert await handle.signal("go", PAYLOAD, idempotency_key="mail-1") is False
    assert await handle.signal("go", {"by": "bo"}) is True
    b = cluster.start("b", target=target)
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.result[1] == PAYLOAD
    check_journal_once(outcome)
    assert [e.seq for e in await handle.journal() if e.kind == "signal"] == [1]
    rows = signal_rows(cluster.db, run_id)
    assert [(r[2], r[3]) for r in rows] == [("mail-1", 1), (None, None)]
    entries = cluster.ledger()
    repeated = [(run_id, "use_signal")] if where == "after" else []
    check_ledger(entries, ref_ledger, repeated)
    assert pids(entries, "use_signal") == ([a.pid] if where == "after" else []) + [b.pid]
    assert {e["key"] for e in entries if e["name"] == "use_signal"} == {event["key"]}


async def test_signal_to_a_run_a_new_worker_holds_in_memory_wakes_it_promptly(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    """After the kill, worker b recovers the run and holds it in memory, waiting for a
    signal (it lingers up to park_after = 5 s before parking). A client's signal sent then
    must wake it at b's next check for other processes' commits (every second with this
    target; 50 ms by default), not only when the linger runs out and the run parks.

    The 1 s check interval of the SLOW_POLL target only widens the window in which the lost
    wake-up happens (from b's claim to its first check), so that the test hits it every time:
    the run checks for the signal within milliseconds of b's claim; the signal is sent 0.3 s
    after the claim is visible; b's first check is about 1 s after b started claiming.

    Regression: the change counter (PRAGMA data_version) used to take its baseline at b's
    first check, so the signal's commit counted as already seen and never poked the run; the
    worker now takes the baseline in ``Worker.start()``, before its first claim."""
    run_id = "prompt-signal"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "approval", ("t",),
                                      target="SLOW_POLL",
                                      drive=_signal_when_waiting("go", PAYLOAD))
    handle = await client.start("approval", "t", id=run_id)
    a = cluster.start("a", target="SLOW_POLL")
    await wait_for_journal(handle, has_entry("signal", "go", "waiting"))
    a.kill()
    b = cluster.start("b", target="SLOW_POLL")
    b_id = await b.ready()
    async with asyncio.timeout(10):
        while (row := await client.store.get_run(run_id)) is None or row.owner != b_id:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # b's run has checked for the signal and lingers in memory
    assert (await handle.status()).status is RunStatus.RUNNING
    assert await handle.signal("go", PAYLOAD) is True
    # (With the lost wake-up: consumed only when b's 5 s linger ran out and the run parked.)
    await wait_for_journal(handle, has_entry("signal", "go", "completed"), timeout=3)

    outcome = (await settle_all(client, [run_id]))[run_id]
    assert outcome == ref[run_id]
    check_ledger(cluster.ledger(), ref_ledger)
