"""The chaos load: orders of 10 steps mixed with timers, signals, children and sagas.

Every step's side effect is appended to an external ledger (a separate SQLite file) keyed by
the step's idempotency key, once in a raw table (every real execution) and once in a table with
the key as primary key (what a deduplicating downstream service would keep). The expected
outcome of order ``i`` is a pure function of ``i``, so the harness can check each run against
its crash-free result.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import timedelta

import perdure
from perdure import Engine, NonRetryable, RetryPolicy, step, workflow

STEPS = 10
LEDGER = os.environ.get("CHAOS_LEDGER", "chaos-ledger.db")


def kind(i: int) -> str:
    """What order ``i`` does besides its steps (deterministic)."""
    return ("plain", "timer", "signal", "child", "saga")[i % 5]


def expected(i: int) -> tuple[str, int | None]:
    """The crash-free (status, result) of order ``i``."""
    if kind(i) == "saga":
        return "failed", None
    total = sum(i + n for n in range(STEPS))
    if kind(i) == "signal":
        total += i  # the signal's payload
    if kind(i) == "child":
        total += 2 * i  # the child's result
    return "completed", total


def _ledger(table: str, key: str, what: str) -> None:
    conn = sqlite3.connect(LEDGER, timeout=60, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        if table == "dedup":
            conn.execute("INSERT OR IGNORE INTO dedup (key, what) VALUES (?, ?)", (key, what))
        else:
            conn.execute("INSERT INTO raw (key, what, pid, at) VALUES (?, ?, ?, ?)",
                         (key, what, os.getpid(), time.time()))
    finally:
        conn.close()


def setup_ledger(path: str) -> None:
    """Create the ledger's tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS raw (key TEXT, what TEXT, pid INT, at REAL)")
    conn.execute("CREATE TABLE IF NOT EXISTS dedup (key TEXT PRIMARY KEY, what TEXT)")
    conn.close()


def _effect(i: int, n: int) -> int:
    # The side effect goes to the ledger, raw and deduplicated by the idempotency key.
    key = perdure.step_key()
    _ledger("raw", key, f"work {i}.{n}")
    _ledger("dedup", key, f"work {i}.{n}")
    time.sleep(0.002)
    return i + n


@step(retry=RetryPolicy(max_attempts=5, initial_delay=0.05))
def work(i: int, n: int) -> int:
    """One unit of work."""
    return _effect(i, n)


def undo(i: int, n: int) -> None:
    """Compensation of ``work``."""
    key = perdure.step_key()
    _ledger("raw", key, f"undo {i}.{n}")
    _ledger("dedup", key, f"undo {i}.{n}")


@step(retry=RetryPolicy(max_attempts=5, initial_delay=0.05), compensate=undo)
def book(i: int, n: int) -> int:
    """A step of a saga: undone when the saga fails."""
    return _effect(i, n)


@step(retry=RetryPolicy(max_attempts=1))
def refuse(i: int) -> None:
    """The saga's failing step."""
    raise NonRetryable(f"order {i} cannot be fulfilled")


@workflow
async def helper(i: int) -> int:
    """The child workflow of ``child`` orders."""
    return await work(i, i)


@workflow
async def order(i: int) -> int:
    """An order: ten steps, plus a timer, a signal, a child or a failing saga."""
    total = 0
    for n in range(STEPS):
        if kind(i) == "saga":
            total += await book(i, n)
            if n == STEPS // 2:
                await refuse(i)
            continue
        total += await work(i, n)
        if n == 3 and kind(i) == "timer":
            await perdure.sleep(timedelta(seconds=1 + i % 3))
        if n == 5 and kind(i) == "signal":
            total += int(await perdure.wait_for_signal("go", timeout=timedelta(minutes=10)))
        if n == 7 and kind(i) == "child":
            kid = await perdure.start_child(helper, i)
            total += await kid.result()
    return total


engine = Engine(os.environ.get("PERDURE_DATABASE_URL", "sqlite:///chaos.db"),
                workflows=[order, helper], park_after=0.5, lease=5.0, concurrency=50)
