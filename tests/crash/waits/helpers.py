"""What the wait crash tests share: the crash-free reference run and checks of journals
and ledgers."""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from perdure import Engine, JournalEntry, VirtualClock, WorkflowHandle
from tests.crash.app_waits import WAIT_WORKFLOWS
from tests.crash.harness import (
    Event,
    Outcome,
    executions,
    ledger,
    settle_all,
)

APP = "tests.crash.app_waits"
PARK_AFTER = {"PARK": 0.2, "HOLD": 5.0, "SLOW_POLL": 5.0}  # worker targets of app_waits
PAYLOAD = {"by": "ana", "level": 2}


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


def has_entry(kind: str, name: str | None = None, status: str | None = None
         ) -> Callable[[list[JournalEntry]], bool]:
    return lambda journal: any(e.kind == kind and name in (None, e.name)
                               and status in (None, e.status) for e in journal)


def hung_in(name: str) -> Callable[[list[Event]], bool]:
    return lambda events: any(e["event"] == "hung" and e["name"] == name for e in events)


def only_entry(journal: list[JournalEntry], kind: str, name: str) -> JournalEntry:
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
