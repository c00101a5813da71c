"""Durable timers across a SIGKILL of their worker: parked, held in memory, just fired."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
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
    check_journal_once,
    check_ledger,
    has_entry,
    hung_in,
    only_entry,
    pids,
    reference,
)

pytestmark = pytest.mark.crash


# -- timers ---------------------------------------------------------------------------------

async def _advance_past_sleep(engine: Engine, handle: WorkflowHandle[Any],
                              clock: VirtualClock | None) -> None:
    assert clock is not None
    await wait_for_journal(handle, has_entry("sleep"))
    clock.advance(timedelta(minutes=1))


@pytest.mark.parametrize("kind", ["sleep", "sleep_until"])
async def test_timer_worker_killed_while_run_is_parked_fires_on_time(
        cluster: Cluster, client: Engine, tmp_path: Path, kind: str) -> None:
    run_id = f"nap-{kind}"
    if kind == "sleep":
        wf, args = "nap", ("t", 1.5)
    else:
        # An absolute time, taken before the reference run and the worker's start: room for
        # both on a loaded machine, so the run is still parked when the test looks.
        wf, args = "nap_until", ("t", datetime.now(UTC) + timedelta(seconds=5))
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, wf, args, virtual=True,
                                      drive=_advance_past_sleep)
    handle = await client.start(wf, *args, id=run_id)
    a = cluster.start("a", target="PARK")
    await wait_for_status(handle, "waiting")
    [_, entry] = await handle.journal()
    assert (entry.kind, entry.status) == ("sleep", "waiting")
    due = entry.due_at
    assert due is not None
    row = await client.store.get_run(run_id)
    assert row is not None and row.wake_at == due and row.owner is None  # parked: only a row
    assert time.time() < due  # the timer has not fired

    a.kill()
    b = cluster.start("b", target="PARK")
    await b.ready()
    b_ready = time.time()
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.status is RunStatus.COMPLETED
    check_journal_once(outcome)
    journal = await handle.journal()
    assert journal[1].due_at == due  # replay never moved the due time
    fired = only_entry(journal, "step", "w_after").started_at
    assert fired is not None
    # On time: not before the due time, and promptly once a worker was there to fire it.
    assert due <= fired < max(due, b_ready) + 0.5, (fired - due, b_ready - due)
    entries = cluster.ledger()
    check_ledger(entries, ref_ledger)
    assert [(e["name"], e["pid"]) for e in entries] == [("w_before", a.pid),
                                                        ("w_after", b.pid)]


async def test_timer_served_in_memory_is_not_restarted_by_the_new_worker(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    run_id = "nap-memory"
    seconds = 2.0
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "nap", ("t", seconds),
                                      target="HOLD", virtual=True, drive=_advance_past_sleep)
    handle = await client.start("nap", "t", seconds, id=run_id)
    a = cluster.start("a", target="HOLD")
    a_id = await a.ready()
    journal = await wait_for_journal(handle, has_entry("sleep"))
    due = only_entry(journal, "sleep", "sleep").due_at
    assert due is not None
    row = await client.store.get_run(run_id)
    # Held in memory by a (not parked), the due time journaled.
    assert row is not None and row.status == RunStatus.RUNNING and row.owner == a_id

    a.kill()
    # Let part of the sleep pass with no worker alive: a timer restarted from zero by the new
    # worker would then fire at least `seconds` after b started, well after `due`.
    await asyncio.sleep(0.6)
    b_started = time.time()
    b = cluster.start("b", target="HOLD")
    await b.ready()
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    check_journal_once(outcome)
    journal = await handle.journal()
    assert only_entry(journal, "sleep", "sleep").due_at == due
    fired = only_entry(journal, "step", "w_after").started_at
    assert fired is not None
    assert due <= fired < b_started + seconds, (fired - due, b_started + seconds - due)
    entries = cluster.ledger()
    check_ledger(entries, ref_ledger)
    assert [(e["name"], e["pid"]) for e in entries] == [("w_before", a.pid),
                                                        ("w_after", b.pid)]


async def test_timer_fired_then_killed_in_the_next_step_does_not_sleep_again(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    run_id = "nap-fired"
    seconds = 1.0
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "nap", ("t", seconds),
                                      virtual=True, drive=_advance_past_sleep)
    handle = await client.start("nap", "t", seconds, id=run_id)
    a = cluster.start("a", target="PARK", hang=["w_after@after"])
    [event] = await cluster.wait_events(hung_in("w_after"), what="hang in w_after after the timer")
    journal = await handle.journal()
    due = only_entry(journal, "sleep", "sleep").due_at
    assert due is not None and time.time() >= due
    assert [e.kind for e in journal] == ["step", "sleep"]

    a.kill()
    b = cluster.start("b", target="PARK")
    await b.ready()  # b claims the run right after this line (after reaping a)
    b_ready = time.time()
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    check_journal_once(outcome)
    after = only_entry(await handle.journal(), "step", "w_after").started_at
    # At once, not after a second sleep (which would start when b claimed the run).
    assert after is not None and after < b_ready + seconds / 2, after - b_ready
    entries = cluster.ledger()
    check_ledger(entries, ref_ledger, [(run_id, "w_after")])
    assert pids(entries, "w_after") == [a.pid, b.pid]
    assert [e["key"] for e in entries if e["name"] == "w_after"] == [event["key"]] * 2
