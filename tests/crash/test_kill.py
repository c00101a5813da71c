"""SIGKILL a worker process at an exact point of a run; a new worker process finishes it.

Each test makes a step hang (it reports through the FIFO when it got there), kills its worker
with SIGKILL, starts another, and compares the finished run with a crash-free run of the same
workflow: same status, result and journal. The ledger of side effects tells what really ran
twice: only the step that was cut off after its side effect (steps are at-least-once, the
journal is exactly-once).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from perdure import Engine, RunStatus
from tests.crash.harness import Cluster, executions, reference, settle_all

pytestmark = pytest.mark.crash


def _hung(events: list[dict[str, object]]) -> bool:
    return any(e["event"] == "hung" for e in events)


async def _journal(client: Engine, run_id: str) -> list[tuple[str, str, str]]:
    return [(e.kind, e.name, e.status) for e in await client.journal(run_id)]


@pytest.mark.parametrize("hung", ["s1", "s3", "s5"])
async def test_kill_mid_step_reexecutes_only_that_step(
        cluster: Cluster, client: Engine, tmp_path: Path, hung: str) -> None:
    run_id = f"mid-{hung}"
    ref, ref_ledger = await reference(tmp_path / "ref", [(run_id, "pipeline", ("t",))])
    await client.start("pipeline", "t", id=run_id)
    a = cluster.start("a", hang=[f"{hung}@after"])
    [event] = await cluster.wait_events(_hung, what=f"hang in {hung}")
    n = int(hung[1:])
    # The side effect happened; the step's journal write did not.
    assert await _journal(client, run_id) == [("step", f"s{i}", "completed") for i in range(1, n)]
    assert [e["name"] for e in cluster.ledger()] == [f"s{i}" for i in range(1, n + 1)]

    a.kill()
    b = cluster.start("b")
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.status is RunStatus.COMPLETED
    entries = cluster.ledger()
    expected = executions(ref_ledger)
    expected[(run_id, hung)] += 1
    assert executions(entries) == expected
    twice = [e for e in entries if e["name"] == hung]
    # At-least-once, honestly: executed again, by the new worker, with the same key.
    assert [e["key"] for e in twice] == [event["key"], event["key"]] == [f"{run_id}:{n - 1}"] * 2
    assert [e["pid"] for e in twice] == [a.pid, b.pid]
    assert all(e["pid"] == (a.pid if int(e["name"][1:]) < n else b.pid)
               for e in entries if e["name"] != hung)


@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
async def test_kill_after_a_journal_write_does_not_redo_the_finished_step(
        cluster: Cluster, client: Engine, tmp_path: Path, reap: bool) -> None:
    run_id = "between"
    ref, ref_ledger = await reference(tmp_path / "ref", [(run_id, "pipeline", ("t",))])
    await client.start("pipeline", "t", id=run_id)
    # Hang at the start of s3, before its side effect: s2 is journaled, s3 has not begun.
    a = cluster.start("a", hang=["s3@before"])
    await cluster.wait_events(_hung, what="hang at the start of s3")
    assert await _journal(client, run_id) == [("step", "s1", "completed"),
                                              ("step", "s2", "completed")]

    if reap:
        a.kill()
    else:  # left a zombie until the end: the new worker must still see it is dead
        a.proc.send_signal(signal.SIGKILL)
        await a.wait_state("Z")
    b = cluster.start("b")
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    entries = cluster.ledger()
    assert executions(entries) == executions(ref_ledger)  # every step exactly once
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("s1", a.pid), ("s2", a.pid), ("s3", b.pid), ("s4", b.pid), ("s5", b.pid)]


@pytest.mark.parametrize("where", ["before", "after"])
async def test_kill_during_compensation_resumes_the_rollback(
        cluster: Cluster, client: Engine, tmp_path: Path, where: str) -> None:
    run_id = f"saga-{where}"
    ref, ref_ledger = await reference(tmp_path / "ref", [(run_id, "saga", ("t",))])
    await client.start("saga", "t", id=run_id)
    a = cluster.start("a", hang=[f"undo_b@{where}"])
    await cluster.wait_events(_hung, what="hang in the compensation of book_b")
    assert await _journal(client, run_id) == [
        ("step", "book_a", "completed"), ("step", "book_b", "completed"),
        ("step", "book_c", "completed"), ("step", "settle", "failed"),
        ("compensation", "book_c", "completed")]

    a.kill()
    b = cluster.start("b")
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.status is RunStatus.FAILED
    # The failure of settle, not anything of the crash.
    assert outcome.result[0] == "perdure.errors.StepFailed"
    assert "cannot settle t" in outcome.result[1]
    assert [(kind, name) for _, kind, name, *_ in outcome.journal][-3:] == [
        ("compensation", "book_c"), ("compensation", "book_b"), ("compensation", "book_a")]

    entries = cluster.ledger()
    ran_twice = ["undo_b"] if where == "after" else []
    assert [e["name"] for e in entries] == [
        "book_a", "book_b", "book_c", "settle", "undo_c", "undo_b", *ran_twice, "undo_a"]
    expected = executions(ref_ledger)
    for name in ran_twice:
        expected[(run_id, name)] += 1
    assert executions(entries) == expected
    # The journaled compensation (undo_c) did not run again; the rest ran on the new worker.
    assert {e["name"] for e in entries if e["pid"] == a.pid} == \
        {"book_a", "book_b", "book_c", "settle", "undo_c", *ran_twice}
    assert [e["pid"] for e in entries if e["name"] in ("undo_b", "undo_a")] == \
        [a.pid] * len(ran_twice) + [b.pid, b.pid]
