"""Workflows of the flow-control process tests, run in real worker processes as
``python -m perdure worker tests.crash.app_flow:TARGET --db ...``.

Every step records what it does in ``observe.db``, a SQLite file in ``PERDURE_CRASH_DIR`` that
all the processes share (the table the workers write from inside each run):

* ``inflight``: a row per run while its step executes (keyed by run: a run recovered after its
  worker died replaces its dead attempt's row); at the start of each step the count of rows is
  appended to ``samples`` (how many runs of the queue were executing at that moment);
* ``starts``: one row per step start, in start order: run, tag, pid, the step's clock.

``PERDURE_CRASH_WORK_MS`` is how long each step works (so runs overlap).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import perdure
from perdure import Engine, Limit, Queue, Rate, step, workflow

__all__ = ["BOUNDED", "FAIR", "GPU", "METERED", "PLAIN", "bounded", "fair", "free",
           "gpu_job", "metered"]

bounded_q = Queue("bounded", concurrency=5)
fair_q = Queue("fair", concurrency=5)
api = Limit("api", rate=Rate(10, per=timedelta(seconds=1)))


def _db() -> sqlite3.Connection:
    conn = sqlite3.connect(Path(os.environ["PERDURE_CRASH_DIR"]) / "observe.db", timeout=60,
                           isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript("""
        CREATE TABLE IF NOT EXISTS inflight (run TEXT PRIMARY KEY, pid INTEGER);
        CREATE TABLE IF NOT EXISTS samples (id INTEGER PRIMARY KEY, n INTEGER, at REAL);
        CREATE TABLE IF NOT EXISTS starts (id INTEGER PRIMARY KEY, run TEXT, tag TEXT,
                                           pid INTEGER, at REAL);
    """)
    return conn


_local = threading.local()  # sync steps run in worker threads: a connection per thread


def _observe() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _db()
    return conn


def _work() -> None:
    ms = float(os.environ.get("PERDURE_CRASH_WORK_MS", "0"))
    if ms:
        time.sleep(ms / 1000)


def _enter(tag: str, *, count: bool) -> None:
    conn, run, now = _observe(), perdure.run_id(), time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR REPLACE INTO inflight (run, pid) VALUES (?, ?)",
                     (run, os.getpid()))
        if count:
            (n,) = conn.execute("SELECT count(*) FROM inflight").fetchone()
            conn.execute("INSERT INTO samples (n, at) VALUES (?, ?)", (n, now))
        conn.execute("INSERT INTO starts (run, tag, pid, at) VALUES (?, ?, ?, ?)",
                     (run, tag, os.getpid(), now))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _leave() -> None:
    _observe().execute("DELETE FROM inflight WHERE run = ? AND pid = ?",
                       (perdure.run_id(), os.getpid()))


@step(name="observed")
def observed(tag: str) -> str:
    _enter(tag, count=True)
    try:
        _work()
    finally:
        _leave()
    return tag


@workflow(name="bounded", queue=bounded_q)
async def bounded(tag: str) -> str:
    return await observed(tag)


@step(name="started")
def started(tag: str) -> str:
    _enter(tag, count=False)
    try:
        _work()
    finally:
        _leave()
    return tag


@workflow(name="fair", queue=fair_q)
async def fair(tag: str) -> str:
    return await started(tag)


@step(name="call_api", limits=[api])
async def call_api(tag: str) -> str:
    # The step's own clock, first thing: the start the limit must space out.
    at = time.time()
    conn = _observe()
    conn.execute("INSERT INTO starts (run, tag, pid, at) VALUES (?, ?, ?, ?)",
                 (perdure.run_id(), tag, os.getpid(), at))
    return tag


@workflow(name="metered")
async def metered(tag: str) -> str:
    return await call_api(tag)


@workflow(name="free")
async def free(tag: str) -> str:
    return await started(tag)


@workflow(name="gpu_job", requires={"gpu": "*"})
async def gpu_job(tag: str) -> str:
    return await started(tag)


_UNUSED = "sqlite:///unused.db"  # the worker command's --db replaces it

BOUNDED = Engine(_UNUSED, workflows=[bounded], concurrency=8)
FAIR = Engine(_UNUSED, workflows=[fair], concurrency=8)
METERED = Engine(_UNUSED, workflows=[metered, free], concurrency=4, limits=[api])
GPU = Engine(_UNUSED, workflows=[gpu_job], labels={"gpu": "a100"})
PLAIN = Engine(_UNUSED, workflows=[gpu_job])
