"""Child runs and gather across a SIGKILL: only what is missing executes again."""

from __future__ import annotations

from collections import Counter
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
    check_journal_once,
    check_ledger,
    has_entry,
    hung_in,
    pids,
    reference,
    signal_rows,
)

pytestmark = pytest.mark.crash


# -- child runs -----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parent-parked", "parent-in-memory"])
async def test_kill_while_the_child_runs(
        cluster: Cluster, client: Engine, tmp_path: Path, target: str) -> None:
    run_id = f"parent-{target}"
    child_id = f"{run_id}/1"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "parent", ("t",),
                                      target=target, more=[child_id])
    handle = await client.start("parent", "t", id=run_id)
    a = cluster.start("a", target=target, hang=["c2@after"])
    [event] = await cluster.wait_events(hung_in("c2"), what="hang in the child's second step")
    assert event["run"] == child_id
    if target == "PARK":
        await wait_for_status(handle, "waiting")
    else:
        assert (await handle.status()).status is RunStatus.RUNNING
    assert [(e.kind, e.status) for e in await handle.journal()] == [
        ("step", "completed"), ("child", "completed")]

    a.kill()
    b = cluster.start("b", target=target)
    outcomes = await settle_all(client, [run_id, child_id])

    assert outcomes == ref
    assert outcomes[run_id].status is RunStatus.COMPLETED
    assert outcomes[run_id].result[2] == outcomes[child_id].result
    for outcome in outcomes.values():
        check_journal_once(outcome)
    # The child was started exactly once.
    assert [k.id for k in await client.list_runs(parent_id=run_id)] == [child_id]
    kinds = Counter(e.kind for e in await handle.journal())
    assert (kinds["child"], kinds["join"]) == (1, 1)
    entries = cluster.ledger()
    check_ledger(entries, ref_ledger, [(child_id, "c2")])
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("p_before", a.pid), ("c1", a.pid), ("c2", a.pid), ("c2", b.pid), ("p_after", b.pid)]


# -- gather ---------------------------------------------------------------------------------

@pytest.mark.parametrize("hung", ["g1", "g3", "g4"])
async def test_kill_mid_gather_executes_only_the_missing_branch(
        cluster: Cluster, client: Engine, tmp_path: Path, hung: str) -> None:
    run_id = f"fan-{hung}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "fan", ("t",))
    handle = await client.start("fan", "t", id=run_id)
    a = cluster.start("a", hang=[f"{hung}@after"])
    await cluster.wait_events(hung_in(hung), what=f"hang in branch {hung}")
    others = {"g1", "g2", "g3", "g4"} - {hung}
    # The other branches finished and are journaled; the hung one is not.
    await wait_for_journal(handle, lambda j: {e.name for e in j if e.status == "completed"}
                           == others)

    a.kill()
    b = cluster.start("b")
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    check_journal_once(outcome)
    entries = cluster.ledger()
    check_ledger(entries, ref_ledger, [(run_id, hung)])
    assert pids(entries, hung) == [a.pid, b.pid]
    assert all(pids(entries, g) == [a.pid] for g in others)  # not executed again
    assert pids(entries, "g_done") == [b.pid]


async def test_kill_mid_gather_of_a_step_a_signal_and_a_timer(
        cluster: Cluster, client: Engine, tmp_path: Path) -> None:
    run_id = "fan-mixed"

    async def send_x(engine: Engine, handle: WorkflowHandle[Any],
                     clock: VirtualClock | None) -> None:
        await handle.signal("x", PAYLOAD)

    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "fan_mixed", ("t",),
                                      target="HOLD", drive=send_x)
    handle = await client.start("fan_mixed", "t", id=run_id)
    assert await handle.signal("x", PAYLOAD) is True  # buffered: consumed at once by a
    a = cluster.start("a", target="HOLD", hang=["g3@after"])
    await cluster.wait_events(hung_in("g3"), what="hang in branch g3")
    # Every branch but g3 is journaled (the timer's due time; it may or may not have fired).
    await wait_for_journal(handle, lambda j: has_entry("step", "g1", "completed")(j)
                           and has_entry("signal", "x", "completed")(j) and has_entry("sleep")(j))

    a.kill()
    b = cluster.start("b", target="HOLD")
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.result[1] == PAYLOAD
    check_journal_once(outcome)
    assert [r[3] for r in signal_rows(cluster.db, run_id)] == [1]
    entries = cluster.ledger()
    check_ledger(entries, ref_ledger, [(run_id, "g3")])
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("g1", a.pid), ("g3", a.pid), ("g3", b.pid), ("g_done", b.pid)]
