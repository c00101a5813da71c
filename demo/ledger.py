"""The outside world, as the demo sees it: a ledger of every side effect that really happened.

A real saga talks to an inventory service, a payment gateway, a courier and a mail server. The
demo stands all of them in with one SQLite file (``demo-data/ledger.db``), separate from
Perdure's own database: each time a step's side effect executes it appends a row here, so the
demo can count real executions and compare them with what the journal says.

Two tables:

``ledger``
    one row per executed side effect: ``(run_id, step, idempotency_key, pid, at)``. The key is
    ``perdure.step_key()``: stable across attempts and across workers, so a side effect that
    runs twice (steps are at-least-once) runs twice *with the same key*.
``gateway_calls``
    every call the payment gateway received, even the ones it timed out on; it lets the
    gateway fail the first call it sees for a key, deterministically, across processes.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import perdure

__all__ = ["LEDGER_PATH", "Effect", "count", "create", "effects", "first_call", "record"]

#: Where the ledger lives (relative to the repository root, where the demo runs).
LEDGER_PATH = Path(os.environ.get("DEMO_LEDGER", "demo-data/ledger.db"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    run_id          TEXT NOT NULL,
    step            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    at              REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_calls (
    idempotency_key TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    at              REAL NOT NULL
);
"""

# One connection per process (the worker drives all its runs on one event loop thread).
_conn: sqlite3.Connection | None = None
_conn_pid: int | None = None


def _connect() -> sqlite3.Connection:
    global _conn, _conn_pid
    if _conn is None or _conn_pid != os.getpid():
        LEDGER_PATH.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every insert is committed (and survives a SIGKILL) when it returns.
        _conn = sqlite3.connect(LEDGER_PATH, isolation_level=None, timeout=30)
        _conn.execute("PRAGMA journal_mode = WAL")
        _conn.executescript(_SCHEMA)
        _conn_pid = os.getpid()
    return _conn


def create() -> None:
    """Create the ledger's tables (idempotent)."""
    _connect()


def record(effect: str) -> str:
    """Record that ``effect`` just happened for the current step; returns its idempotency key.

    Call it only inside a step (or a compensation): it reads the run id and the step's key.
    """
    key = perdure.step_key()
    _connect().execute(
        "INSERT INTO ledger (run_id, step, idempotency_key, pid, at) VALUES (?, ?, ?, ?, ?)",
        (perdure.run_id(), effect, key, os.getpid(), time.time()))
    return key


def first_call(key: str) -> bool:
    """Log a payment-gateway call with ``key``; True if it is the first call with that key."""
    conn = _connect()
    (seen,) = conn.execute("SELECT count(*) FROM gateway_calls WHERE idempotency_key = ?",
                           (key,)).fetchone()
    conn.execute("INSERT INTO gateway_calls (idempotency_key, pid, at) VALUES (?, ?, ?)",
                 (key, os.getpid(), time.time()))
    return int(seen) == 0


@dataclass(frozen=True)
class Effect:
    """One executed side effect, as the ledger recorded it."""

    run_id: str
    step: str
    idempotency_key: str
    pid: int
    at: float

    @property
    def seq(self) -> int:
        """The journal sequence number of the step that executed it (the key is run:seq)."""
        return int(self.idempotency_key.rsplit(":", 1)[1])


def effects() -> list[Effect]:
    """Every side effect executed so far, oldest first."""
    rows = _connect().execute(
        "SELECT run_id, step, idempotency_key, pid, at FROM ledger ORDER BY at, rowid")
    return [Effect(*row) for row in rows]


def count() -> int:
    """How many side effects have executed so far."""
    (n,) = _connect().execute("SELECT count(*) FROM ledger").fetchone()
    return int(n)
