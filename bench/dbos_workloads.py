"""DBOS Transact 3.4 side of the perdure benchmark.

Runs under the benchmark-only venv created by ``bench/setup_dbos.sh``::

    bench/.venv-dbos/bin/python bench/dbos_workloads.py --db sqlite --out dbos.json
    bench/.venv-dbos/bin/python bench/dbos_workloads.py \
        --db postgresql://user:pw@localhost:5432/perdure_bench_dbos --out dbos-pg.json

Workloads (each repeat gets a fresh system database and ~20 uncounted warm-up workflows):

``seq0``
    500 sequential workflows with 0 steps, each awaited by a direct ``await wf(i)``
    call before the next one starts.
``seq5``
    500 sequential workflows of 5 trivial async steps, direct ``await wf(i)``.
``seq0_handle`` / ``seq5_handle``
    Same as above but via ``await DBOS.start_workflow_async(wf, i)`` followed by
    ``await handle.get_result()`` (the "background" API), for reference.
``conc5``
    200 workflows of 5 steps started concurrently with ``DBOS.start_workflow_async``
    (start all, then gather all ``get_result()``).
``start_first_step``
    Latency from the ``start_workflow_async`` call to the first step body running,
    200 sequential samples (median and p99 per repeat).
``signal``
    Send -> receive latency in one process: a workflow loops on
    ``await DBOS.recv_async("ping")``; latency = ``perf_counter`` just before
    ``await DBOS.send_async(wf_id, i, "ping")`` -> the workflow's first line after ``recv``
    returns. On PostgreSQL (LISTEN/NOTIFY) 100 samples 5 ms apart; on SQLite, where DBOS
    finds messages by polling every second, 20 samples 5-1005 ms apart (uniformly random, so
    sends do not lock in phase with the poll). 10 warm-up samples; median and p99 per repeat.

Derived metrics: per-workflow ms for seq0/seq5, marginal per-step cost
``(seq5 - seq0) / (500 * 5)`` in microseconds, and conc5 steps/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbos import DBOS, DBOSConfig

N_SEQ = 500
N_CONC = 200
N_LATENCY = 200
N_WARMUP = 20
STEPS = 5

# ---------------------------------------------------------------------------
# Workflows and steps (registered at import time in DBOS's global registry,
# which survives DBOS.destroy() so each run can relaunch on a fresh database).
# ---------------------------------------------------------------------------

_first_step_at: list[float] = []


@DBOS.step()
async def s(i: int) -> int:
    """Trivial async step."""
    return i + 1


@DBOS.step()
async def mark_step(i: int) -> int:
    """Step that records (perf_counter) when its body starts executing."""
    _first_step_at.append(time.perf_counter())
    return i + 1


@DBOS.workflow()
async def wf0(i: int) -> int:
    """Workflow with zero steps."""
    return i


@DBOS.workflow()
async def wf5(i: int) -> int:
    """Workflow with five trivial sequential steps."""
    for _ in range(STEPS):
        i = await s(i)
    return i


@DBOS.workflow()
async def wf_mark(i: int) -> int:
    """Workflow whose first (and only) step timestamps itself."""
    return await mark_step(i)


_on_signal: list[Callable[[Any], None]] = []


@DBOS.workflow()
async def ping_loop(n: int) -> int:
    """Receive ``n`` messages on topic "ping", handing each to the bench's hook at once."""
    for _ in range(n):
        payload = await DBOS.recv_async("ping", timeout_seconds=60)
        for hook in _on_signal:
            hook(payload)
    return n


# ---------------------------------------------------------------------------
# Measured bodies. Each returns a dict of raw measurements for one repeat.
# ---------------------------------------------------------------------------


async def _warmup() -> None:
    for i in range(N_WARMUP):
        assert await wf5(i) == i + STEPS
        h = await DBOS.start_workflow_async(wf0, i)
        assert await h.get_result() == i


async def _seq_direct(n_steps: int) -> dict[str, float]:
    wf = wf5 if n_steps else wf0
    t0 = time.perf_counter()
    for i in range(N_SEQ):
        r = await wf(i)
        assert r == i + n_steps
    return {"seconds": time.perf_counter() - t0}


async def _seq_handle(n_steps: int) -> dict[str, float]:
    wf = wf5 if n_steps else wf0
    t0 = time.perf_counter()
    for i in range(N_SEQ):
        h = await DBOS.start_workflow_async(wf, i)
        r = await h.get_result()
        assert r == i + n_steps
    return {"seconds": time.perf_counter() - t0}


async def _conc5() -> dict[str, float]:
    t0 = time.perf_counter()
    handles = [await DBOS.start_workflow_async(wf5, i) for i in range(N_CONC)]
    results = await asyncio.gather(*(h.get_result() for h in handles))
    dt = time.perf_counter() - t0
    assert results == [i + STEPS for i in range(N_CONC)]
    return {"seconds": dt}


async def _start_first_step() -> dict[str, float]:
    samples: list[float] = []
    for i in range(N_LATENCY):
        _first_step_at.clear()
        t0 = time.perf_counter()
        h = await DBOS.start_workflow_async(wf_mark, i)
        assert await h.get_result() == i + 1
        samples.append(_first_step_at[0] - t0)
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1e3,
        "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1e3,
    }


N_SIGNAL = {"postgresql": 100, "sqlite": 20}
SIGNAL_BACKEND = ["sqlite"]


async def _signal() -> dict[str, float]:
    import random

    backend = SIGNAL_BACKEND[0]
    n = N_SIGNAL[backend]
    loop = asyncio.get_running_loop()
    waiting: dict[int, asyncio.Future[float]] = {}

    def hook(payload: Any) -> None:
        fut = waiting.pop(payload, None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    _on_signal[:] = [hook]
    samples: list[float] = []
    h = await DBOS.start_workflow_async(ping_loop, n + 10)
    for i in range(n + 10):
        await asyncio.sleep(0.005 if backend == "postgresql" else random.uniform(0.005, 1.005))
        fut = waiting[i] = loop.create_future()
        t0 = time.perf_counter()
        await DBOS.send_async(h.workflow_id, i, "ping")
        t1 = await asyncio.wait_for(fut, 60)
        if i >= 10:
            samples.append(t1 - t0)
    assert await h.get_result() == n + 10
    _on_signal.clear()
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1e3,
        "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1e3,
    }


BODIES: dict[str, Callable[[], Awaitable[dict[str, float]]]] = {
    "seq0": lambda: _seq_direct(0),
    "seq5": lambda: _seq_direct(STEPS),
    "seq0_handle": lambda: _seq_handle(0),
    "seq5_handle": lambda: _seq_handle(STEPS),
    "conc5": _conc5,
    "start_first_step": _start_first_step,
    "signal": _signal,
}

# ---------------------------------------------------------------------------
# Database / DBOS lifecycle
# ---------------------------------------------------------------------------


@dataclass
class Target:
    """Where the system database lives: a fresh SQLite file per run, or a Postgres URL."""

    db: str
    tmp_root: Path | None
    sqlite_wal: bool = False
    counter: int = 0
    sqlite_pragmas: dict[str, Any] = field(default_factory=dict)
    txn_trace: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        """True for the SQLite backend."""
        return self.db == "sqlite"

    def fresh_url(self) -> str:
        """Return a system database URL for a brand-new, empty database."""
        self.counter += 1
        if self.is_sqlite:
            d = Path(tempfile.mkdtemp(prefix="dbos-bench-", dir=self.tmp_root))
            path = d / "dbos_sys.sqlite"
            if self.sqlite_wal:
                # journal_mode=WAL is persistent in the file, so DBOS's own
                # connections (which never set it) will inherit it.
                with sqlite3.connect(path) as conn:
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.close()
            return f"sqlite:///{path}"
        # Postgres: one database per run (DBOS creates it on launch after the reset, and
        # run_one drops it afterwards). The pid keeps concurrent invocations apart.
        parts = urlsplit(self.db)
        base = parts.path.lstrip("/")
        if base in ("", "postgres"):
            base = "perdure_bench_dbos"
        return urlunsplit(parts._replace(path=f"/{base}_{os.getpid()}_{self.counter}"))


def _launch(url: str, is_sqlite: bool) -> None:
    config: DBOSConfig = {
        "name": "perdure-bench",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    if not is_sqlite:
        DBOS.reset_system_database()  # drop leftovers from an earlier run
    DBOS.launch()


def _sys_engine() -> Any:
    from dbos._dbos import _get_dbos_instance  # private, only for introspection

    return _get_dbos_instance()._sys_db.engine


def _read_sqlite_pragmas() -> dict[str, Any]:
    """Read the durability PRAGMAs from a live DBOS system-database connection."""
    with _sys_engine().connect() as conn:
        out: dict[str, Any] = {}
        for p in ("journal_mode", "synchronous", "locking_mode", "busy_timeout"):
            out[p] = conn.exec_driver_sql(f"PRAGMA {p}").scalar()
        out["isolation_level"] = conn.connection.dbapi_connection.isolation_level
    return out


def _count_rows() -> dict[str, int]:
    with _sys_engine().connect() as conn:
        return {
            t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() or 0)
            for t in ("workflow_status", "operation_outputs")
        }


async def trace_transactions() -> dict[str, Any]:
    """Run one wf0 and one wf5 with SQLAlchemy event hooks and count what hits the DB.

    Returns, per workflow kind, the number of transactions, of transactions that
    wrote (contained INSERT/UPDATE/DELETE) and the statement kinds in order.
    """
    from sqlalchemy import event

    engine = _sys_engine()
    log: list[str] = []

    def on_exec(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        table = next((w for w in words[1:6] if "." in w or w.isidentifier()), "")
        log.append(f"{words[0].upper()} {table}")

    def on_begin(conn: Any) -> None:
        log.append("BEGIN")

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", on_exec),
        ("begin", on_begin),
    ]
    for name, fn in hooks:
        event.listen(engine, name, fn)
    out: dict[str, Any] = {}
    try:
        for label, wf in (("wf0", wf0), ("wf5", wf5)):
            log.clear()
            await wf(1)
            txns: list[list[str]] = []
            for entry in log:
                if entry == "BEGIN" or not txns:
                    txns.append([])
                if entry != "BEGIN":
                    txns[-1].append(entry)
            dml = ("INSERT", "UPDATE", "DELETE")
            writes = [t for t in txns if any(s.split()[0] in dml for s in t)]
            out[label] = {
                "transactions": len(txns),
                "write_transactions": len(writes),
                "statements": [" ; ".join(t) for t in txns],
            }
    finally:
        for name, fn in hooks:
            event.remove(engine, name, fn)
    return out


def run_one(target: Target, name: str) -> dict[str, float]:
    """Run one repeat of workload ``name`` on a fresh database."""
    url = target.fresh_url()
    _launch(url, target.is_sqlite)
    try:

        async def main() -> dict[str, float]:
            await _warmup()
            res = await BODIES[name]()
            if not target.txn_trace:
                target.txn_trace = await trace_transactions()
            return res

        res = asyncio.run(main())
        if target.is_sqlite and not target.sqlite_pragmas:
            target.sqlite_pragmas = _read_sqlite_pragmas()
            target.sqlite_pragmas["rows_after_first_run"] = _count_rows()
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=0)
        if target.is_sqlite:
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            path.parent.rmdir()
        else:
            _drop_pg_database(url)
    return res


def _drop_pg_database(url: str) -> None:
    """Drop a run's PostgreSQL system database (through the server's ``postgres`` database),
    so repeated runs do not pile databases up on the server."""
    import psycopg  # DBOS's own PostgreSQL driver

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    except psycopg.Error as exc:
        print(f"could not drop {name}: {exc}", file=sys.stderr)


# ---------------------------------------------------------------------------
# Aggregation / reporting
# ---------------------------------------------------------------------------


def _stat(values: list[float], unit: str) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "unit": unit,
        "samples": values,
    }


def aggregate(raw: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Turn per-repeat raw measurements into {name: {median,min,max,unit}}."""
    w: dict[str, dict[str, Any]] = {}
    for name in ("seq0", "seq5", "seq0_handle", "seq5_handle", "conc5"):
        if name in raw:
            w[name] = _stat([r["seconds"] for r in raw[name]], "s")
    for suffix in ("", "_handle"):
        s0, s5 = raw.get(f"seq0{suffix}"), raw.get(f"seq5{suffix}")
        if s0:
            w[f"seq0{suffix}_per_workflow"] = _stat(
                [r["seconds"] / N_SEQ * 1e3 for r in s0], "ms/workflow"
            )
        if s5:
            w[f"seq5{suffix}_per_workflow"] = _stat(
                [r["seconds"] / N_SEQ * 1e3 for r in s5], "ms/workflow"
            )
        if s0 and s5:
            # Pair repeats in order; the headline uses the medians of each.
            per_step = [
                (b["seconds"] - a["seconds"]) / (N_SEQ * STEPS) * 1e6
                for a, b in zip(s0, s5, strict=True)
            ]
            st = _stat(per_step, "us/step")
            med5 = statistics.median(r["seconds"] for r in s5)
            med0 = statistics.median(r["seconds"] for r in s0)
            st["median"] = (med5 - med0) / (N_SEQ * STEPS) * 1e6
            w[f"marginal_step{suffix}"] = st
    if "conc5" in raw:
        w["conc5_steps_per_s"] = _stat(
            [N_CONC * STEPS / r["seconds"] for r in raw["conc5"]], "steps/s"
        )
    if "start_first_step" in raw:
        w["start_first_step"] = _stat(
            [r["median_ms"] for r in raw["start_first_step"]], "ms (median of 200)"
        )
        w["start_first_step_p99"] = _stat(
            [r["p99_ms"] for r in raw["start_first_step"]], "ms (p99 of 200)"
        )
    if "signal" in raw:
        w["signal_p50"] = _stat([r["median_ms"] for r in raw["signal"]], "ms (median)")
        w["signal_p99"] = _stat([r["p99_ms"] for r in raw["signal"]], "ms (p99)")
    return w


def summary(report: dict[str, Any]) -> str:
    """Human-readable summary of a report."""
    lines = [
        f"DBOS {report['version']} on {report['backend']} "
        f"(sqlite {report['sqlite_version']}, python {report['python']}), "
        f"repeats={report['repeat']}"
    ]
    for name, st in report["workloads"].items():
        lines.append(
            f"  {name:26s} median {st['median']:10.3f}  "
            f"[{st['min']:.3f} .. {st['max']:.3f}]  {st['unit']}"
        )
    lines += [f"  note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a postgresql:// URL")
    ap.add_argument("--out", type=Path, help="write JSON report here")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="parent dir for the temporary SQLite files (default: bench/)",
    )
    ap.add_argument(
        "--workloads",
        default=",".join(BODIES),
        help=f"comma-separated subset of {','.join(BODIES)}",
    )
    ap.add_argument(
        "--sqlite-wal",
        action="store_true",
        help="pre-create each SQLite file in WAL mode (DBOS default is rollback journal)",
    )
    args = ap.parse_args(argv)
    if args.db != "sqlite" and not args.db.startswith(("postgresql://", "postgres://")):
        ap.error("--db must be 'sqlite' or a postgresql:// URL")
    names = [n for n in args.workloads.split(",") if n]
    unknown = set(names) - set(BODIES)
    if unknown:
        ap.error(f"unknown workloads: {sorted(unknown)}")
    logging.getLogger("dbos").setLevel(logging.WARNING)

    target = Target(args.db, args.dir if args.db == "sqlite" else None, args.sqlite_wal)
    SIGNAL_BACKEND[0] = "sqlite" if target.is_sqlite else "postgresql"
    raw: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    t_start = time.perf_counter()
    for r in range(args.repeat):  # interleave workloads across repeats
        for n in names:
            res = run_one(target, n)
            raw[n].append(res)
            print(f"[repeat {r + 1}/{args.repeat}] {n}: {res}", file=sys.stderr, flush=True)

    notes = [
        "seq*: direct `await wf(i)` calls (the usual, fastest way to run a workflow "
        "inline and wait for it); *_handle: `await DBOS.start_workflow_async(wf, i)` "
        "+ `await handle.get_result()`.",
        "conc5: all 200 started with DBOS.start_workflow_async, then asyncio.gather of "
        "handle.get_result().",
        "start_first_step: perf_counter before start_workflow_async -> first line of "
        "the step body.",
        f"Each repeat: fresh system database, {N_WARMUP}x(wf5 direct + wf0 via handle) "
        "warm-up not counted. Workloads interleaved across repeats.",
        "DBOS config: log_level=WARNING, everything else default (no OTLP, no Conductor).",
        "DBOS async steps/workflows hop to a thread (asyncio.to_thread on DBOS's "
        "executor) for every system-database call; the SQLAlchemy engine is sync "
        "(pysqlite for SQLite).",
    ]
    if target.is_sqlite:
        p = target.sqlite_pragmas
        notes.append(
            "DBOS SQLite durability (read from a live system-db connection): "
            f"journal_mode={p.get('journal_mode')}, synchronous={p.get('synchronous')} "
            "(0=OFF,1=NORMAL,2=FULL,3=EXTRA), "
            f"isolation_level={p.get('isolation_level')}, busy_timeout={p.get('busy_timeout')}. "
            "DBOS source (_sys_db_sqlite.py) sets only busy_timeout=30000, "
            "foreign_keys=ON and BEGIN IMMEDIATE; journal_mode/synchronous are left "
            "at SQLite defaults (rollback journal DELETE, synchronous FULL), i.e. "
            "every write commit is fsynced (several fsyncs in DELETE mode)."
        )
        notes.append(
            "--sqlite-wal: file pre-created with journal_mode=WAL (tuned, non-default "
            "DBOS setup; synchronous stays FULL = one WAL fsync per commit)."
            if target.sqlite_wal
            else "Default DBOS SQLite setup (no --sqlite-wal)."
        )
        notes.append(f"row counts after first run: {p.get('rows_after_first_run')}")
    tt = target.txn_trace
    if tt:
        notes.append(
            "DB traffic per workflow (SQLAlchemy event trace, see txn_trace): "
            f"wf0 = {tt['wf0']['write_transactions']} write txns "
            f"({tt['wf0']['transactions']} total); wf5 = {tt['wf5']['write_transactions']} "
            f"write txns ({tt['wf5']['transactions']} total), i.e. each step costs one "
            "read txn (status check + recorded-output lookup) and one write txn "
            "(owner check UPDATE + INSERT operation_outputs)."
            + (" With pysqlite, SELECT-only txns never issue BEGIN, so only write txns hit "
               "the disk." if target.is_sqlite else "")
        )
    if not target.is_sqlite:
        notes.append(
            "PostgreSQL: DBOS's system database is a fresh database per repeat on the given "
            "server (created by DBOS.launch, dropped afterwards); DBOS's default pool and "
            "psycopg driver."
        )
    report: dict[str, Any] = {
        "engine": "dbos",
        "version": pkg_version("dbos"),
        "backend": "sqlite" if target.is_sqlite else "postgresql",
        "sqlite_wal_precreated": target.sqlite_wal,
        "sqlite_version": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "sizes": {"seq": N_SEQ, "conc": N_CONC, "latency": N_LATENCY, "steps": STEPS},
        "workloads": aggregate(raw),
        "sqlite_pragmas": target.sqlite_pragmas,
        "txn_trace": target.txn_trace,
        "notes": notes,
        "wall_seconds": time.perf_counter() - t_start,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
