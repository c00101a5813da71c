"""Perdure side of the benchmark: the workloads of ``dbos_workloads.py`` on SQLite or PostgreSQL.

Runs under the project's venv::

    .venv/bin/python bench/perdure_workloads.py --out perdure.json     # synchronous=full
    .venv/bin/python bench/perdure_workloads.py --synchronous normal --out p-n.json
    .venv/bin/python bench/perdure_workloads.py --db postgresql://postgres@127.0.0.1:5432/postgres

Every repeat of every workload opens one in-process ``Engine(url, workflows=[...])`` (it both
starts and executes runs: the analogue of DBOS's in-process execution) on a brand-new SQLite
file (or, with ``--db postgresql://...``, a brand-new database on that server, created through
the given admin URL and dropped afterwards), runs 20 uncounted warm-up workflows (each a wf5 and
a wf0), then measures:

``seq0`` / ``seq5``
    500 sequential workflows of 0 / 5 trivial async steps: ``h = await engine.start(wf, i)``
    then ``await h.result()`` before the next one. (Perdure has one way to run a workflow, so
    this is the analogue of both DBOS's direct ``await wf(i)`` and its ``*_handle`` variant.)
``conc5``
    200 five-step workflows all started, then all results gathered -> steps/s.
``start_first_step``
    perf_counter just before ``engine.start`` -> first line of the first step body, 200
    sequential samples (median and p99 per repeat).
``fanout``
    one workflow ``await perdure.gather(*(s(i) for i in range(1000)))`` (after one uncounted
    fan-out of 100) -> steps/s, from ``engine.start`` to ``result()``.

Derived: per-workflow ms for seq0/seq5, marginal per-step cost ``(seq5 - seq0) / 2500`` (µs),
conc5 steps/s. The JSON has the shape of the DBOS report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import perdure
from perdure import Engine, step, workflow

N_SEQ = 500
N_CONC = 200
N_LATENCY = 200
N_WARMUP = 20
STEPS = 5

# ---------------------------------------------------------------------------
# Workflows and steps (module level, registered per engine via workflows=[...]).
# ---------------------------------------------------------------------------

_first_step_at: list[float] = []


@step
async def s(i: int) -> int:
    """Trivial async step."""
    return i + 1


@step
async def mark_step(i: int) -> int:
    """Step that records (perf_counter) when its body starts executing."""
    _first_step_at.append(time.perf_counter())
    return i + 1


@workflow
async def wf0(i: int) -> int:
    """Workflow with zero steps."""
    return i


@workflow
async def wf5(i: int) -> int:
    """Workflow with five trivial sequential steps."""
    for _ in range(STEPS):
        i = await s(i)
    return i


@workflow
async def wf_mark(i: int) -> int:
    """Workflow whose first (and only) step timestamps itself."""
    return await mark_step(i)


N_FANOUT = 1000


@workflow
async def fan(n: int) -> int:
    """One workflow, ``n`` trivial steps at once."""
    results = await perdure.gather(*(s(i) for i in range(n)))
    return len(results)


WORKFLOWS = [wf0, wf5, wf_mark, fan]

# ---------------------------------------------------------------------------
# Measured bodies. Each returns a dict of raw measurements for one repeat.
# ---------------------------------------------------------------------------


async def _run(engine: Engine, wf: Any, i: int) -> Any:
    h = await engine.start(wf, i)
    return await h.result()


async def _warmup(engine: Engine) -> None:
    for i in range(N_WARMUP):
        assert await _run(engine, wf5, i) == i + STEPS
        assert await _run(engine, wf0, i) == i


async def _seq(engine: Engine, n_steps: int) -> dict[str, float]:
    wf = wf5 if n_steps else wf0
    t0 = time.perf_counter()
    for i in range(N_SEQ):
        r = await _run(engine, wf, i)
        assert r == i + n_steps
    return {"seconds": time.perf_counter() - t0}


async def _conc5(engine: Engine) -> dict[str, float]:
    t0 = time.perf_counter()
    handles = [await engine.start(wf5, i) for i in range(N_CONC)]
    results = await asyncio.gather(*(h.result() for h in handles))
    dt = time.perf_counter() - t0
    assert results == [i + STEPS for i in range(N_CONC)]
    return {"seconds": dt}


async def _start_first_step(engine: Engine) -> dict[str, float]:
    samples: list[float] = []
    for i in range(N_LATENCY):
        _first_step_at.clear()
        t0 = time.perf_counter()
        h = await engine.start(wf_mark, i)
        assert await h.result() == i + 1
        samples.append(_first_step_at[0] - t0)
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1e3,
        "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1e3,
    }


async def _fanout(engine: Engine) -> dict[str, float]:
    assert await _run(engine, fan, 100) == 100
    t0 = time.perf_counter()
    assert await _run(engine, fan, N_FANOUT) == N_FANOUT
    return {"seconds": time.perf_counter() - t0}


BODIES: dict[str, Callable[[Engine], Awaitable[dict[str, float]]]] = {
    "seq0": lambda e: _seq(e, 0),
    "seq5": lambda e: _seq(e, STEPS),
    "conc5": _conc5,
    "start_first_step": _start_first_step,
    "fanout": _fanout,
}

# ---------------------------------------------------------------------------
# Introspection: what one wf0 / wf5 costs in transactions and commits.
# ---------------------------------------------------------------------------


async def _on_conn(engine: Engine, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    # Private: runs ``fn`` on the storage's connection thread (bench introspection only).
    return await engine.store._db.submit(fn, write=False)  # type: ignore[attr-defined]


async def trace_transactions(engine: Engine) -> dict[str, Any]:
    """Run one wf0 and one wf5 with sqlite3's trace callback on the engine's connection:
    statements executed, write transactions (BEGIN IMMEDIATE ... COMMIT), their contents and
    how many rows each changed (``total_changes`` at BEGIN vs COMMIT; a transaction that changes
    no row writes no WAL frame and so costs no fsync). The engine's own background traffic
    (claim loop, heartbeat) is included, as it is part of what a run costs."""
    log: list[tuple[str, int]] = []

    def install(conn: sqlite3.Connection) -> None:
        def cb(sql: str) -> None:
            words = " ".join(ln for ln in sql.splitlines()
                             if not ln.lstrip().startswith("--")).split()
            if not words:
                return
            head = " ".join(words[:2]).upper()
            if head.startswith(("SAVEPOINT", "RELEASE", "PRAGMA")):
                return
            text = head if head.startswith(("BEGIN", "COMMIT")) else " ".join(words[:4])
            log.append((text, conn.total_changes))

        conn.set_trace_callback(cb)

    await _on_conn(engine, install)
    out: dict[str, Any] = {}
    try:
        for label, wf in (("wf0", wf0), ("wf5", wf5)):
            await asyncio.sleep(0.02)
            log.clear()
            await _run(engine, wf, 1)
            await asyncio.sleep(0.02)  # let the claim loop's follow-up settle
            txns: list[tuple[list[str], int]] = []
            cur: list[str] | None = None
            began = 0
            reads: list[str] = []
            for text, changes in log:
                if text.startswith("BEGIN"):
                    cur, began = [], changes
                elif text.startswith("COMMIT"):
                    if cur is not None:
                        txns.append((cur, changes - began))
                    cur = None
                elif cur is not None:
                    cur.append(text)
                else:
                    reads.append(text)
            out[label] = {
                "write_transactions": len(txns),
                "write_transactions_with_changes": sum(1 for _, n in txns if n),
                "autocommit_reads": len(reads),
                "transactions": [f"{' ; '.join(t)} ({n} rows)" for t, n in txns],
                "reads": reads,
            }
    finally:
        await _on_conn(engine, lambda c: c.set_trace_callback(None))
    return out


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------


@dataclass
class Target:
    """A fresh SQLite file per run under ``root``, at the given durability; or, when ``db`` is
    a PostgreSQL admin URL, a fresh database on that server."""

    root: Path
    synchronous: str
    db: str = "sqlite"
    pragmas: dict[str, Any] = field(default_factory=dict)
    txn_trace: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.db == "sqlite"


async def _fresh_pg(admin: str) -> tuple[str, str]:
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    name = f"perdure_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


async def _drop_pg(admin: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_one(target: Target, name: str) -> dict[str, float]:
    """Run one repeat of workload ``name`` on a fresh database."""
    if not target.is_sqlite:
        async def main_pg() -> dict[str, float]:
            dbname, url = await _fresh_pg(target.db)
            try:
                async with Engine(url, workflows=WORKFLOWS) as engine:
                    await _warmup(engine)
                    return await BODIES[name](engine)
            finally:
                await _drop_pg(target.db, dbname)

        return asyncio.run(main_pg())

    d = Path(tempfile.mkdtemp(prefix="perdure-bench-", dir=target.root))
    path = d / "perdure.db"
    url = f"sqlite:///{path}"

    async def main() -> dict[str, float]:
        engine = Engine(url, workflows=WORKFLOWS, synchronous=target.synchronous)
        async with engine:
            await _warmup(engine)
            res = await BODIES[name](engine)
            if not target.pragmas:
                target.pragmas = await _on_conn(engine, _read_pragmas)
            if not target.txn_trace:
                target.txn_trace = await trace_transactions(engine)
        return res

    try:
        return asyncio.run(main())
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        d.rmdir()


def _read_pragmas(conn: sqlite3.Connection) -> dict[str, Any]:
    return {p: conn.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("journal_mode", "synchronous", "locking_mode", "busy_timeout")}


# ---------------------------------------------------------------------------
# Aggregation / reporting (same shape as dbos_workloads.py)
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
    for name in ("seq0", "seq5", "conc5"):
        if raw.get(name):
            w[name] = _stat([r["seconds"] for r in raw[name]], "s")
    s0, s5 = raw.get("seq0"), raw.get("seq5")
    if s0:
        w["seq0_per_workflow"] = _stat([r["seconds"] / N_SEQ * 1e3 for r in s0], "ms/workflow")
    if s5:
        w["seq5_per_workflow"] = _stat([r["seconds"] / N_SEQ * 1e3 for r in s5], "ms/workflow")
    if s0 and s5:
        per_step = [(b["seconds"] - a["seconds"]) / (N_SEQ * STEPS) * 1e6
                    for a, b in zip(s0, s5, strict=True)]
        st = _stat(per_step, "us/step")
        med5 = statistics.median(r["seconds"] for r in s5)
        med0 = statistics.median(r["seconds"] for r in s0)
        st["median"] = (med5 - med0) / (N_SEQ * STEPS) * 1e6
        w["marginal_step"] = st
    if raw.get("conc5"):
        w["conc5_steps_per_s"] = _stat([N_CONC * STEPS / r["seconds"] for r in raw["conc5"]],
                                       "steps/s")
    if raw.get("fanout"):
        w["fanout_steps_per_s"] = _stat([N_FANOUT / r["seconds"] for r in raw["fanout"]],
                                        f"steps/s (one workflow gathering {N_FANOUT} steps)")
    if raw.get("start_first_step"):
        w["start_first_step"] = _stat([r["median_ms"] for r in raw["start_first_step"]],
                                      "ms (median of 200)")
        w["start_first_step_p99"] = _stat([r["p99_ms"] for r in raw["start_first_step"]],
                                          "ms (p99 of 200)")
    return w


def summary(report: dict[str, Any]) -> str:
    """Human-readable summary of a report."""
    lines = [
        f"Perdure {report['version']} on {report['backend']} "
        f"(synchronous={report['synchronous']}, sqlite {report['sqlite_version']}, "
        f"python {report['python']}), repeats={report['repeat']}"
    ]
    for name, st in report["workloads"].items():
        lines.append(f"  {name:26s} median {st['median']:10.3f}  "
                     f"[{st['min']:.3f} .. {st['max']:.3f}]  {st['unit']}")
    lines += [f"  note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write JSON report here")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--synchronous", default="full", choices=("full", "normal", "off"),
                    help="SQLite durability of the engine (default: full, the engine default)")
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent,
                    help="parent dir for the temporary SQLite files (default: bench/)")
    ap.add_argument("--db", default="sqlite",
                    help="'sqlite' (a fresh file per run) or a PostgreSQL admin URL (a fresh "
                         "database per run on that server)")
    ap.add_argument("--workloads", default=",".join(BODIES),
                    help=f"comma-separated subset of {','.join(BODIES)}")
    args = ap.parse_args(argv)
    names = [n for n in args.workloads.split(",") if n]
    unknown = set(names) - set(BODIES)
    if unknown:
        ap.error(f"unknown workloads: {sorted(unknown)}")

    if args.db != "sqlite" and not args.db.startswith(("postgresql://", "postgres://")):
        ap.error("--db must be 'sqlite' or a postgresql:// URL")
    target = Target(args.dir, args.synchronous, args.db)
    raw: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    t_start = time.perf_counter()
    for r in range(args.repeat):  # interleave workloads across repeats
        for n in names:
            res = run_one(target, n)
            raw[n].append(res)
            print(f"[repeat {r + 1}/{args.repeat}] {n}: {res}", file=sys.stderr, flush=True)

    p = target.pragmas
    notes = [
        "seq*: `h = await engine.start(wf, i)` + `await h.result()` per workflow, sequentially "
        "(Perdure's only way to run a workflow; compare with DBOS's direct call and *_handle).",
        "conc5: all 200 started with engine.start, then asyncio.gather of handle.result().",
        "start_first_step: perf_counter before engine.start -> first line of the step body.",
        f"Each repeat: fresh SQLite file and a fresh in-process Engine (worker and client in one), "
        f"{N_WARMUP}x(wf5 + wf0) warm-up not counted. Workloads interleaved across repeats.",
        "Engine options: defaults (concurrency=100, poll_interval=0.05) except synchronous.",
    ]
    if target.is_sqlite:
        notes.append(
            f"Perdure SQLite durability (read from the engine's connection): "
            f"journal_mode={p.get('journal_mode')}, synchronous={p.get('synchronous')} "
            f"(0=OFF,1=NORMAL,2=FULL,3=EXTRA), busy_timeout={p.get('busy_timeout')}; "
            "one connection on a dedicated thread that group-commits queued writes "
            "(BEGIN IMMEDIATE, a SAVEPOINT per write, COMMIT).")
    else:
        notes.append("PostgreSQL: a fresh database per repeat on the given server; the "
                     "engine's defaults (asyncpg pool, group-committed journal writes).")
    tt = target.txn_trace
    if tt:
        notes.append(
            "DB traffic per workflow (sqlite3 trace callback on the engine's connection, incl. "
            f"the claim loop; see txn_trace): wf0 = {tt['wf0']['write_transactions']} write "
            f"txns ({tt['wf0']['write_transactions_with_changes']} change rows) + "
            f"{tt['wf0']['autocommit_reads']} autocommit reads; wf5 = "
            f"{tt['wf5']['write_transactions']} write txns "
            f"({tt['wf5']['write_transactions_with_changes']} change rows) + "
            f"{tt['wf5']['autocommit_reads']} autocommit reads. A write txn whose statements "
            "change nothing writes no WAL frame and so does not fsync.")
    report: dict[str, Any] = {
        "engine": "perdure",
        "version": perdure.__version__,
        "backend": "sqlite" if target.is_sqlite else "postgresql",
        "synchronous": args.synchronous if target.is_sqlite else "n/a",
        "sqlite_version": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "sizes": {"seq": N_SEQ, "conc": N_CONC, "latency": N_LATENCY, "steps": STEPS},
        "workloads": aggregate(raw),
        "sqlite_pragmas": p,
        "txn_trace": tt,
        "notes": notes,
        "wall_seconds": time.perf_counter() - t_start,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
