"""Every durable wait across a SIGKILL of its worker process, at each interesting point.

Timers, signals, child runs, gather and cancellation (requested, by deadline, and with its
cleanup cut off). Each test kills a real ``python -m perdure worker`` process at a point it
knows *by state* (a FIFO event from a hanging step, or the run's row and journal), lets a new
worker process finish the run, and compares it with a crash-free reference run of the same
workflow in this process: same status, result and journal (every entry once, at its sequence
number), and a ledger of side effects in which only the step cut off by the kill ran twice.

Timers use real but short sleeps (worker processes cannot share a virtual clock); the
reference runs use a virtual clock where they would otherwise have to wait.

``test_cancel_of_a_run_whose_worker_died_inside_a_step`` guards a fixed bug: a cancel pending
when a run was recovered used to skip, and never compensate, the step its dead worker was
executing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from perdure import Engine, JournalEntry, RunCancelled, RunStatus, VirtualClock, WorkflowHandle
from perdure.testing import wait_for_journal, wait_for_status
from tests.crash.app_waits import WAIT_WORKFLOWS
from tests.crash.harness import (
    ROOT,
    Cluster,
    Event,
    Outcome,
    Worker,
    executions,
    ledger,
    settle_all,
)

pytestmark = pytest.mark.crash

APP = "tests.crash.app_waits"
PARK_AFTER = {"PARK": 0.2, "HOLD": 5.0, "SLOW_POLL": 5.0}  # worker targets of app_waits
PAYLOAD = {"by": "ana", "level": 2}


class WaitCluster(Cluster):
    """A :class:`Cluster` whose workers drive ``tests.crash.app_waits`` (target ``PARK`` or
    ``HOLD``: an Engine with that ``park_after``)."""

    def start(self, name: str, *, hang: Sequence[str] = (),  # type: ignore[override]
              target: str = "PARK", log_level: str = "WARNING", **_: Any) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
        env["PERDURE_CRASH_DIR"] = str(self.dir)
        env["PERDURE_LOG"] = log_level
        if hang:
            env["PERDURE_CRASH_HANG"] = ",".join(hang)
        cmd = [sys.executable, "-m", "perdure", "worker", f"{APP}:{target}", "--db", self.url]
        log = self.dir / f"{name}.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
        worker = Worker(name, proc, log)
        self.workers.append(worker)
        return worker


@pytest.fixture
def wc(tmp_path: Path) -> Iterator[WaitCluster]:
    """Worker processes on one SQLite file; every one is killed and reaped at the end."""
    c = WaitCluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
async def client(wc: WaitCluster) -> AsyncIterator[Engine]:
    """A client engine (starts, signals, cancels and inspects runs; drives none)."""
    async with Engine(wc.url, workflows=WAIT_WORKFLOWS, worker=False) as engine:
        yield engine


Drive = Callable[[Engine, WorkflowHandle[Any], VirtualClock | None], Awaitable[None]]


async def reference(directory: Path, run_id: str, wf: str, args: tuple[Any, ...], *,
                    target: str = "PARK", drive: Drive | None = None, virtual: bool = False,
                    more: Sequence[str] = (), **start: Any) -> tuple[dict[str, Outcome],
                                                                    list[Event]]:
    """Run ``wf(*args)`` crash-free in this process, on a database of its own, with the
    worker options of ``target``; ``drive`` sends it what the crash test sends (signals, a
    cancel) or moves the virtual clock. The outcomes of the run and of ``more`` runs (its
    children), and the ledger."""
    directory.mkdir()
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PERDURE_CRASH_")}
    os.environ["PERDURE_CRASH_DIR"] = str(directory)
    clock = VirtualClock(time.time()) if virtual else None
    try:
        async with Engine(f"sqlite:///{directory / 'perdure.db'}", workflows=WAIT_WORKFLOWS,
                          park_after=PARK_AFTER[target], clock=clock,
                          shutdown_grace=0.5) as engine:
            handle = await engine.start(wf, *args, id=run_id, **start)
            if drive is not None:
                await drive(engine, handle, clock)
            outcomes = await settle_all(engine, [run_id], timeout=10)
            outcomes.update(await settle_all(engine, more, timeout=10))  # children exist now
    finally:
        os.environ.pop("PERDURE_CRASH_DIR", None)
        os.environ.update(saved)
    return outcomes, ledger(directory)


def _has(kind: str, name: str | None = None, status: str | None = None
         ) -> Callable[[list[JournalEntry]], bool]:
    return lambda journal: any(e.kind == kind and name in (None, e.name)
                               and status in (None, e.status) for e in journal)


def _hung(name: str) -> Callable[[list[Event]], bool]:
    return lambda events: any(e["event"] == "hung" and e["name"] == name for e in events)


def _entry(journal: list[JournalEntry], kind: str, name: str) -> JournalEntry:
    [entry] = [e for e in journal if e.kind == kind and e.name == name]
    return entry


def signal_rows(db: Path, run_id: str) -> list[tuple[str, str, str | None, int | None]]:
    """The run's signals as buffered in the database: (name, payload, key, consumed_seq)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT name, payload, idempotency_key, consumed_seq "
                            "FROM perdure_signals WHERE run_id = ? ORDER BY id",
                            (run_id,)).fetchall()
    finally:
        conn.close()


def check_ledger(entries: list[Event], ref_ledger: list[Event],
                 repeated: Sequence[tuple[str, str]] = ()) -> None:
    """Every side effect as often as in the crash-free run, except ``repeated`` (run, name):
    the steps cut off by the kill after their side effect, which ran once more."""
    expected = executions(ref_ledger) + Counter(repeated)
    assert executions(entries) == expected


def check_journal_once(outcome: Outcome) -> None:
    """No operation journaled twice: sequence numbers are 0..n-1, each once."""
    seqs = [seq for seq, *_ in outcome.journal]
    assert seqs == list(range(len(seqs)))


def pids(entries: list[Event], name: str) -> list[int]:
    return [e["pid"] for e in entries if e["name"] == name]


# -- timers ---------------------------------------------------------------------------------

async def _advance_past_sleep(engine: Engine, handle: WorkflowHandle[Any],
                              clock: VirtualClock | None) -> None:
    assert clock is not None
    await wait_for_journal(handle, _has("sleep"))
    clock.advance(timedelta(minutes=1))


@pytest.mark.parametrize("kind", ["sleep", "sleep_until"])
async def test_timer_worker_killed_while_run_is_parked_fires_on_time(
        wc: WaitCluster, client: Engine, tmp_path: Path, kind: str) -> None:
    run_id = f"nap-{kind}"
    if kind == "sleep":
        wf, args = "nap", ("t", 1.5)
    else:
        wf, args = "nap_until", ("t", datetime.now(UTC) + timedelta(seconds=2))
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, wf, args, virtual=True,
                                      drive=_advance_past_sleep)
    handle = await client.start(wf, *args, id=run_id)
    a = wc.start("a", target="PARK")
    await wait_for_status(handle, "waiting")
    [_, entry] = await handle.journal()
    assert (entry.kind, entry.status) == ("sleep", "waiting")
    due = entry.due_at
    assert due is not None
    row = await client.store.get_run(run_id)
    assert row is not None and row.wake_at == due and row.owner is None  # parked: only a row
    assert time.time() < due  # the timer has not fired

    a.kill()
    b = wc.start("b", target="PARK")
    await b.ready()
    b_ready = time.time()
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.status is RunStatus.COMPLETED
    check_journal_once(outcome)
    journal = await handle.journal()
    assert journal[1].due_at == due  # replay never moved the due time
    fired = _entry(journal, "step", "w_after").started_at
    assert fired is not None
    # On time: not before the due time, and promptly once a worker was there to fire it.
    assert due <= fired < max(due, b_ready) + 0.5, (fired - due, b_ready - due)
    entries = wc.ledger()
    check_ledger(entries, ref_ledger)
    assert [(e["name"], e["pid"]) for e in entries] == [("w_before", a.pid),
                                                        ("w_after", b.pid)]


async def test_timer_served_in_memory_is_not_restarted_by_the_new_worker(
        wc: WaitCluster, client: Engine, tmp_path: Path) -> None:
    run_id = "nap-memory"
    seconds = 2.0
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "nap", ("t", seconds),
                                      target="HOLD", virtual=True, drive=_advance_past_sleep)
    handle = await client.start("nap", "t", seconds, id=run_id)
    a = wc.start("a", target="HOLD")
    a_id = await a.ready()
    journal = await wait_for_journal(handle, _has("sleep"))
    due = _entry(journal, "sleep", "sleep").due_at
    assert due is not None
    row = await client.store.get_run(run_id)
    # Held in memory by a (not parked), the due time journaled.
    assert row is not None and row.status == RunStatus.RUNNING and row.owner == a_id

    a.kill()
    # Let part of the sleep pass with no worker alive: a timer restarted from zero by the new
    # worker would then fire at least `seconds` after b started, well after `due`.
    await asyncio.sleep(0.6)
    b_started = time.time()
    b = wc.start("b", target="HOLD")
    await b.ready()
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    check_journal_once(outcome)
    journal = await handle.journal()
    assert _entry(journal, "sleep", "sleep").due_at == due
    fired = _entry(journal, "step", "w_after").started_at
    assert fired is not None
    assert due <= fired < b_started + seconds, (fired - due, b_started + seconds - due)
    entries = wc.ledger()
    check_ledger(entries, ref_ledger)
    assert [(e["name"], e["pid"]) for e in entries] == [("w_before", a.pid),
                                                        ("w_after", b.pid)]


async def test_timer_fired_then_killed_in_the_next_step_does_not_sleep_again(
        wc: WaitCluster, client: Engine, tmp_path: Path) -> None:
    run_id = "nap-fired"
    seconds = 1.0
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "nap", ("t", seconds),
                                      virtual=True, drive=_advance_past_sleep)
    handle = await client.start("nap", "t", seconds, id=run_id)
    a = wc.start("a", target="PARK", hang=["w_after@after"])
    [event] = await wc.wait_events(_hung("w_after"), what="hang in w_after after the timer")
    journal = await handle.journal()
    due = _entry(journal, "sleep", "sleep").due_at
    assert due is not None and time.time() >= due
    assert [e.kind for e in journal] == ["step", "sleep"]

    a.kill()
    b = wc.start("b", target="PARK")
    await b.ready()  # b claims the run right after this line (after reaping a)
    b_ready = time.time()
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    check_journal_once(outcome)
    after = _entry(await handle.journal(), "step", "w_after").started_at
    # At once, not after a second sleep (which would start when b claimed the run).
    assert after is not None and after < b_ready + seconds / 2, after - b_ready
    entries = wc.ledger()
    check_ledger(entries, ref_ledger, [(run_id, "w_after")])
    assert pids(entries, "w_after") == [a.pid, b.pid]
    assert [e["key"] for e in entries if e["name"] == "w_after"] == [event["key"]] * 2


# -- signals --------------------------------------------------------------------------------

def _signal_when_waiting(name: str, payload: Any) -> Drive:
    async def drive(engine: Engine, handle: WorkflowHandle[Any],
                    clock: VirtualClock | None) -> None:
        await wait_for_journal(handle, _has("signal", name))
        await handle.signal(name, payload)

    return drive


@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parked", "in-memory"])
async def test_signal_sent_while_no_worker_lives_is_buffered_and_consumed_once(
        wc: WaitCluster, client: Engine, tmp_path: Path, target: str) -> None:
    run_id = f"buffered-{target}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "approval", ("t",),
                                      target=target, drive=_signal_when_waiting("go", PAYLOAD))
    handle = await client.start("approval", "t", id=run_id)
    a = wc.start("a", target=target)
    await wait_for_journal(handle, _has("signal", "go", "waiting"))
    if target == "PARK":
        await wait_for_status(handle, "waiting")
    else:
        assert (await handle.status()).status is RunStatus.RUNNING  # held by a

    a.kill()
    assert await handle.signal("go", PAYLOAD) is True
    # Buffered, not consumed: no worker is alive.
    assert [r[3] for r in signal_rows(wc.db, run_id)] == [None]
    assert [(e.kind, e.status) for e in await handle.journal()] == [
        ("step", "completed"), ("signal", "waiting")]
    b = wc.start("b", target=target)
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.result[1] == PAYLOAD
    check_journal_once(outcome)
    journal = await handle.journal()
    [sig] = [e for e in journal if e.kind == "signal"]
    assert (sig.seq, sig.status) == (1, "completed")
    assert [r[3] for r in signal_rows(wc.db, run_id)] == [1]  # consumed once, by seq 1
    entries = wc.ledger()
    check_ledger(entries, ref_ledger)
    assert [(e["name"], e["pid"]) for e in entries] == [("sig_before", a.pid),
                                                        ("use_signal", b.pid)]


@pytest.mark.parametrize(("target", "where"), [("PARK", "after"), ("PARK", "before"),
                                               ("HOLD", "after")],
                         ids=["parked-after", "parked-before", "in-memory-after"])
async def test_signal_consumed_then_killed_in_the_consuming_step(
        wc: WaitCluster, client: Engine, tmp_path: Path, target: str, where: str) -> None:
    run_id = f"consumed-{target}-{where}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "approval", ("t",),
                                      target=target, drive=_signal_when_waiting("go", PAYLOAD))
    a = wc.start("a", target=target, hang=[f"use_signal@{where}"])
    # a is up before the run exists (its cross-process change check has its baseline)
    await a.ready()
    handle = await client.start("approval", "t", id=run_id)
    await wait_for_journal(handle, _has("signal", "go", "waiting"))
    if target == "PARK":
        await wait_for_status(handle, "waiting")
    assert await handle.signal("go", PAYLOAD, idempotency_key="mail-1") is True
    [event] = await wc.wait_events(_hung("use_signal"), what="hang in the consuming step")
    assert _entry(await handle.journal(), "signal", "go").status == "completed"

    a.kill()
    # The client retries its send (a no-op), and another signal of the same name arrives:
    # the replay must return the journaled payload, not consume anything.
    assert await handle.signal("go", PAYLOAD, idempotency_key="mail-1") is False
    assert await handle.signal("go", {"by": "bo"}) is True
    b = wc.start("b", target=target)
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.result[1] == PAYLOAD
    check_journal_once(outcome)
    assert [e.seq for e in await handle.journal() if e.kind == "signal"] == [1]
    rows = signal_rows(wc.db, run_id)
    assert [(r[2], r[3]) for r in rows] == [("mail-1", 1), (None, None)]
    entries = wc.ledger()
    repeated = [(run_id, "use_signal")] if where == "after" else []
    check_ledger(entries, ref_ledger, repeated)
    assert pids(entries, "use_signal") == ([a.pid] if where == "after" else []) + [b.pid]
    assert {e["key"] for e in entries if e["name"] == "use_signal"} == {event["key"]}


# -- child runs -----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parent-parked", "parent-in-memory"])
async def test_kill_while_the_child_runs(
        wc: WaitCluster, client: Engine, tmp_path: Path, target: str) -> None:
    run_id = f"parent-{target}"
    child_id = f"{run_id}/1"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "parent", ("t",),
                                      target=target, more=[child_id])
    handle = await client.start("parent", "t", id=run_id)
    a = wc.start("a", target=target, hang=["c2@after"])
    [event] = await wc.wait_events(_hung("c2"), what="hang in the child's second step")
    assert event["run"] == child_id
    if target == "PARK":
        await wait_for_status(handle, "waiting")
    else:
        assert (await handle.status()).status is RunStatus.RUNNING
    assert [(e.kind, e.status) for e in await handle.journal()] == [
        ("step", "completed"), ("child", "completed")]

    a.kill()
    b = wc.start("b", target=target)
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
    entries = wc.ledger()
    check_ledger(entries, ref_ledger, [(child_id, "c2")])
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("p_before", a.pid), ("c1", a.pid), ("c2", a.pid), ("c2", b.pid), ("p_after", b.pid)]


# -- gather ---------------------------------------------------------------------------------

@pytest.mark.parametrize("hung", ["g1", "g3", "g4"])
async def test_kill_mid_gather_executes_only_the_missing_branch(
        wc: WaitCluster, client: Engine, tmp_path: Path, hung: str) -> None:
    run_id = f"fan-{hung}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "fan", ("t",))
    handle = await client.start("fan", "t", id=run_id)
    a = wc.start("a", hang=[f"{hung}@after"])
    await wc.wait_events(_hung(hung), what=f"hang in branch {hung}")
    others = {"g1", "g2", "g3", "g4"} - {hung}
    # The other branches finished and are journaled; the hung one is not.
    await wait_for_journal(handle, lambda j: {e.name for e in j if e.status == "completed"}
                           == others)

    a.kill()
    b = wc.start("b")
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    check_journal_once(outcome)
    entries = wc.ledger()
    check_ledger(entries, ref_ledger, [(run_id, hung)])
    assert pids(entries, hung) == [a.pid, b.pid]
    assert all(pids(entries, g) == [a.pid] for g in others)  # not executed again
    assert pids(entries, "g_done") == [b.pid]


async def test_kill_mid_gather_of_a_step_a_signal_and_a_timer(
        wc: WaitCluster, client: Engine, tmp_path: Path) -> None:
    run_id = "fan-mixed"

    async def send_x(engine: Engine, handle: WorkflowHandle[Any],
                     clock: VirtualClock | None) -> None:
        await handle.signal("x", PAYLOAD)

    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "fan_mixed", ("t",),
                                      target="HOLD", drive=send_x)
    handle = await client.start("fan_mixed", "t", id=run_id)
    assert await handle.signal("x", PAYLOAD) is True  # buffered: consumed at once by a
    a = wc.start("a", target="HOLD", hang=["g3@after"])
    await wc.wait_events(_hung("g3"), what="hang in branch g3")
    # Every branch but g3 is journaled (the timer's due time; it may or may not have fired).
    await wait_for_journal(handle, lambda j: _has("step", "g1", "completed")(j)
                           and _has("signal", "x", "completed")(j) and _has("sleep")(j))

    a.kill()
    b = wc.start("b", target="HOLD")
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.result[1] == PAYLOAD
    check_journal_once(outcome)
    assert [r[3] for r in signal_rows(wc.db, run_id)] == [1]
    entries = wc.ledger()
    check_ledger(entries, ref_ledger, [(run_id, "g3")])
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("g1", a.pid), ("g3", a.pid), ("g3", b.pid), ("g_done", b.pid)]


# -- cancellation ---------------------------------------------------------------------------

async def _cancel_when_waiting(engine: Engine, handle: WorkflowHandle[Any],
                               clock: VirtualClock | None) -> None:
    await wait_for_journal(handle, _has("signal", "never"))
    await handle.cancel()


BOOKING_JOURNAL = [("step", "book_x", "completed"), ("step", "book_y", "completed"),
                   ("signal", "never", "cancelled"), ("step", "cleanup", "completed"),
                   ("compensation", "book_y", "completed"),
                   ("compensation", "book_x", "completed")]


async def _cancelled(handle: WorkflowHandle[Any]) -> RunCancelled:
    with pytest.raises(RunCancelled) as err:
        await handle.result(timeout=10)
    return err.value


@pytest.mark.parametrize("target", ["PARK", "HOLD"], ids=["parked", "in-memory"])
async def test_cancel_requested_while_the_worker_is_dead(
        wc: WaitCluster, client: Engine, tmp_path: Path, target: str) -> None:
    run_id = f"cancel-dead-{target}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "booking", ("t",),
                                      target=target, drive=_cancel_when_waiting)
    handle = await client.start("booking", "t", id=run_id)
    a = wc.start("a", target=target)
    await wait_for_journal(handle, _has("signal", "never", "waiting"))
    if target == "PARK":
        await wait_for_status(handle, "waiting")

    a.kill()
    assert await handle.cancel() is True
    row = await client.store.get_run(run_id)
    assert row is not None and row.cancel_requested
    assert row.status == (RunStatus.WAITING if target == "PARK" else RunStatus.RUNNING)
    b = wc.start("b", target=target)
    await _cancelled(handle)
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert outcome.status is RunStatus.CANCELLED
    assert [(k, n, s) for _, k, n, s, *_ in outcome.journal] == BOOKING_JOURNAL
    entries = wc.ledger()
    check_ledger(entries, ref_ledger)
    # Cleanup once, then the compensations once each, newest first, all on b.
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("book_x", a.pid), ("book_y", a.pid), ("cleanup", b.pid), ("undo_y", b.pid),
        ("undo_x", b.pid)]


@pytest.mark.parametrize("hang", ["cleanup@before", "cleanup@after", "undo_y@after",
                                  "undo_x@before"])
async def test_kill_while_the_cancellation_is_under_way(
        wc: WaitCluster, client: Engine, tmp_path: Path, hang: str) -> None:
    run_id = f"cancel-{hang.replace('@', '-')}"
    name, where = hang.split("@")
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "booking", ("t",),
                                      drive=_cancel_when_waiting)
    handle = await client.start("booking", "t", id=run_id)
    a = wc.start("a", target="PARK", hang=[hang])
    await wait_for_journal(handle, _has("signal", "never", "waiting"))
    await wait_for_status(handle, "waiting")
    assert await handle.cancel() is True
    [event] = await wc.wait_events(_hung(name), what=f"hang in {name} of the cancellation")
    # Cancelled was delivered (journaled at the wait) before the cleanup began.
    assert _entry(await handle.journal(), "signal", "never").status == "cancelled"

    a.kill()
    b = wc.start("b", target="PARK")
    err = await _cancelled(handle)
    assert b.proc.poll() is None
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert err.cause_type == "perdure.errors.Cancelled"
    assert outcome == ref[run_id]
    assert outcome.status is RunStatus.CANCELLED
    assert [(k, n, s) for _, k, n, s, *_ in outcome.journal] == BOOKING_JOURNAL
    entries = wc.ledger()
    repeated = [name] if where == "after" else []
    check_ledger(entries, ref_ledger, [(run_id, n) for n in repeated])
    order = ["book_x", "book_y", "cleanup", "undo_y", "undo_x"]
    at = order.index(name) + 1
    assert [e["name"] for e in entries] == order[:at] + repeated + order[at:]
    # What was journaled before the kill did not run again; the rest ran on b.
    done_by_a = order[:order.index(name)] + repeated
    assert [e["name"] for e in entries if e["pid"] == a.pid] == done_by_a
    assert {e["key"] for e in entries if e["name"] == name} == {event["key"]}


async def test_deadline_passing_while_the_worker_is_dead_cancels_on_time(
        wc: WaitCluster, client: Engine, tmp_path: Path) -> None:
    run_id = "deadline"

    async def past_deadline(engine: Engine, handle: WorkflowHandle[Any],
                            clock: VirtualClock | None) -> None:
        assert clock is not None
        await wait_for_status(handle, "waiting")
        clock.advance(2)

    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "timed_booking", ("t",),
                                      virtual=True, drive=past_deadline,
                                      deadline=timedelta(seconds=1.5))
    handle = await client.start("timed_booking", "t", id=run_id,
                                deadline=timedelta(seconds=1.5))
    a = wc.start("a", target="PARK")
    await wait_for_status(handle, "waiting")
    row = await client.store.get_run(run_id)
    assert row is not None and row.deadline is not None
    deadline = row.deadline
    assert row.wake_at == deadline  # parked until the deadline, not the 60 s timer
    assert time.time() < deadline

    a.kill()
    b = wc.start("b", target="PARK")
    await b.ready()
    b_ready = time.time()
    await _cancelled(handle)
    outcome = (await settle_all(client, [run_id]))[run_id]

    assert outcome == ref[run_id]
    assert [(k, n, s) for _, k, n, s, *_ in outcome.journal] == [
        ("step", "book_x", "completed"), ("sleep", "sleep", "cancelled"),
        ("step", "cleanup", "completed"), ("compensation", "book_x", "completed")]
    started = _entry(await handle.journal(), "step", "cleanup").started_at
    assert started is not None
    assert deadline <= started < max(deadline, b_ready) + 0.5, (started - deadline,
                                                                b_ready - deadline)
    entries = wc.ledger()
    check_ledger(entries, ref_ledger)
    assert [(e["name"], e["pid"]) for e in entries] == [
        ("book_x", a.pid), ("cleanup", b.pid), ("undo_x", b.pid)]


async def test_cancel_of_a_parent_while_the_worker_is_dead_cancels_its_child(
        wc: WaitCluster, client: Engine, tmp_path: Path) -> None:
    run_id = "cancel-parent"
    child_id = f"{run_id}/1"

    async def cancel_when_child_waits(engine: Engine, handle: WorkflowHandle[Any],
                                      clock: VirtualClock | None) -> None:
        await wait_for_status(engine.handle(child_id), "waiting")
        await wait_for_status(handle, "waiting")
        await handle.cancel()

    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "booking_parent", ("t",),
                                      drive=cancel_when_child_waits, more=[child_id])
    handle = await client.start("booking_parent", "t", id=run_id)
    a = wc.start("a", target="PARK")
    await wait_for_status(client.handle(child_id), "waiting")
    await wait_for_status(handle, "waiting")

    a.kill()
    assert await handle.cancel() is True
    b = wc.start("b", target="PARK")
    await _cancelled(handle)
    await _cancelled(client.handle(child_id))
    outcomes = await settle_all(client, [run_id, child_id])

    assert outcomes == ref
    assert {o.status for o in outcomes.values()} == {RunStatus.CANCELLED}
    assert [k.id for k in await client.list_runs(parent_id=run_id)] == [child_id]
    entries = wc.ledger()
    check_ledger(entries, ref_ledger)
    assert sorted((e["run"], e["name"], e["pid"]) for e in entries) == sorted([
        (run_id, "book_x", a.pid), (child_id, "book_y", a.pid),
        (child_id, "undo_y", b.pid), (run_id, "undo_x", b.pid)])



@pytest.mark.parametrize("when", ["before-kill", "after-kill"])
async def test_cancel_of_a_run_whose_worker_died_inside_a_step(
        wc: WaitCluster, client: Engine, tmp_path: Path, when: str) -> None:
    """Crash-free, a cancel requested while a step executes waits for the step ("a step already
    executing finishes first"), so the step is compensated. Killed after the step's side
    effect (and before its journal write), the run must end the same way: the step runs
    again (at-least-once, same key), completes, and is undone like any completed step."""
    run_id = f"cancel-in-step-{when}"
    ref, ref_ledger = await reference(tmp_path / "ref", run_id, "booking", ("t",),
                                      drive=_cancel_when_waiting)
    handle = await client.start("booking", "t", id=run_id)
    a = wc.start("a", target="PARK", hang=["book_y@after"])
    [event] = await wc.wait_events(_hung("book_y"), what="hang in book_y after its effect")
    if when == "before-kill":
        assert await handle.cancel() is True  # flagged; a cannot deliver it mid-step
    a.kill()
    if when == "after-kill":
        assert await handle.cancel() is True
    b = wc.start("b", target="PARK")
    await _cancelled(handle)
    outcome = (await settle_all(client, [run_id]))[run_id]

    entries = wc.ledger()
    # What happens today: book_y is journaled 'cancelled' and never compensated, though
    # the ledger shows its side effect: the booking leaks.
    assert [e["name"] for e in entries] == ["book_x", "book_y", "book_y", "cleanup", "undo_y",
                                            "undo_x"], entries
    assert outcome == ref[run_id]
    assert [(k, n, s) for _, k, n, s, *_ in outcome.journal] == BOOKING_JOURNAL
    check_ledger(entries, ref_ledger, [(run_id, "book_y")])
    assert pids(entries, "book_y") == [a.pid, b.pid]
    assert {e["key"] for e in entries if e["name"] == "book_y"} == {event["key"]}


async def test_signal_to_a_run_a_new_worker_holds_in_memory_wakes_it_promptly(
        wc: WaitCluster, client: Engine, tmp_path: Path) -> None:
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
    a = wc.start("a", target="SLOW_POLL")
    await wait_for_journal(handle, _has("signal", "go", "waiting"))
    a.kill()
    b = wc.start("b", target="SLOW_POLL")
    b_id = await b.ready()
    async with asyncio.timeout(10):
        while (row := await client.store.get_run(run_id)) is None or row.owner != b_id:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # b's run has checked for the signal and lingers in memory
    assert (await handle.status()).status is RunStatus.RUNNING
    assert await handle.signal("go", PAYLOAD) is True
    # (With the lost wake-up: consumed only when b's 5 s linger ran out and the run parked.)
    await wait_for_journal(handle, _has("signal", "go", "completed"), timeout=3)

    outcome = (await settle_all(client, [run_id]))[run_id]
    assert outcome == ref[run_id]
    check_ledger(wc.ledger(), ref_ledger)
