"""Where does Perdure's per-step time go? A layer-by-layer decomposition on SQLite.

    .venv/bin/python bench/step_cost.py [--synchronous full|normal] [-n 2000] [--repeat 3]

Each layer adds one thing on top of the previous one, all on a fresh database file with the
engine's own schema and SQL (``SqliteStorage``), one operation at a time (sequential):

``raw_commit``       BEGIN; INSERT one row into a plain table; COMMIT — on the caller's thread.
``engine_sql``       what the DB thread executes for one journal write, on the caller's thread:
                     BEGIN IMMEDIATE; SAVEPOINT; the fenced ``put_entry`` INSERT; RELEASE; COMMIT.
``engine_sql_nosp``  the same without the SAVEPOINT/RELEASE pair (a one-op batch needs none).
``hop_read``         asyncio -> DB thread -> asyncio with a no-op read: the pure thread round trip.
``put_entry``        ``await storage.put_entry(...)``: the full write path of the storage layer.
``ctx_write``        ``await RunContext.write(entry)``: adds the context's pending-list + gather.

The per-step figure from ``perdure_workloads.py`` (``marginal_step``) minus ``ctx_write`` is the
step machinery outside storage (run_step, codec, contextvars, task switches).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from perdure.records import JournalEntry
from perdure.storage.port import NewRun, wf_key
from perdure.storage.sqlite.adapter import SqliteStorage
from perdure.workflow.context import RunContext
from perdure.workflow.definitions import workflow
from perdure.workflow.steps import run_step

WORKER = "bench-worker"


@workflow
async def _wf(i: int) -> int:
    return i


def _fresh(root: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix="step-cost-", dir=root)) / "p.db"


def _cleanup(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.rmdir()


def raw_commit(root: Path, sync: str, n: int) -> float:
    path = _fresh(root)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        for k in range(-50, 0):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES(?, ?)", (k, "x" * 64))
            conn.execute("COMMIT")
        t0 = time.perf_counter()
        for k in range(n):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES(?, ?)", (k, "x" * 64))
            conn.execute("COMMIT")
        dt = time.perf_counter() - t0
        conn.close()
    finally:
        _cleanup(path)
    return dt / n * 1e6


async def _open(root: Path, sync: str) -> tuple[SqliteStorage, Path, int]:
    path = _fresh(root)
    store = SqliteStorage(str(path), synchronous=sync)  # type: ignore[arg-type]
    await store.open()
    now = time.time()
    await store.create_run(NewRun("r1", _wf.name, _wf.version, "[[0],{}]", now))
    [claimed] = await store.claim(worker=WORKER, keys=[wf_key(_wf.name, _wf.version)], limit=1,
                                  now=now + 1, lease_until=now + 3600)
    return store, path, claimed.epoch


def _entry_params(epoch: int, seq: int) -> dict[str, Any]:
    return {"run_id": "r1", "epoch": epoch, "worker": WORKER, "seq": seq, "kind": "step",
            "name": "s", "status": "completed", "attempts": 1, "output": str(seq),
            "error": None, "due_at": None, "started_at": 1.0, "finished_at": 2.0}


def engine_sql(root: Path, sync: str, n: int, savepoint: bool) -> float:
    async def setup() -> tuple[SqliteStorage, Path, int]:
        return await _open(root, sync)

    store, path, epoch = asyncio.run(setup())
    asyncio.run(store.close())
    try:
        conn = store._connect()  # same PRAGMAs and schema as the engine's connection
        sql = store._q["put_entry"]
        seq = 10_000

        def one() -> None:
            nonlocal seq
            seq += 1
            conn.execute("BEGIN IMMEDIATE")
            if savepoint:
                conn.execute("SAVEPOINT op")
            cur = conn.execute(sql, _entry_params(epoch, seq))
            assert cur.rowcount == 1
            if savepoint:
                conn.execute("RELEASE op")
            conn.execute("COMMIT")

        for _ in range(50):
            one()
        t0 = time.perf_counter()
        for _ in range(n):
            one()
        dt = time.perf_counter() - t0
        conn.close()
    finally:
        _cleanup(path)
    return dt / n * 1e6


def async_layer(root: Path, sync: str, n: int, layer: str) -> float:
    async def main() -> float:
        store, path, epoch = await _open(root, sync)
        try:
            ctx = RunContext("r1", epoch, WORKER, _wf, store, None, 5.0, {}, run_step)  # type: ignore[arg-type]
            seq = 10_000

            async def one() -> None:
                nonlocal seq
                seq += 1
                if layer == "hop_read":
                    await store._db.submit(lambda c: None, write=False)
                elif layer == "put_entry":
                    await store.put_entry("r1", epoch, WORKER, JournalEntry(
                        seq, "step", "s", "completed", 1, str(seq), None, None, 1.0, 2.0))
                else:
                    await ctx.write(JournalEntry(seq, "step", "s", "completed", 1, str(seq),
                                                 None, None, 1.0, 2.0))

            for _ in range(50):
                await one()
            t0 = time.perf_counter()
            for _ in range(n):
                await one()
            return (time.perf_counter() - t0) / n * 1e6
        finally:
            await store.close()
            _cleanup(path)

    return asyncio.run(main())


LAYERS = ["raw_commit", "engine_sql", "engine_sql_nosp", "hop_read", "put_entry", "ctx_write"]


def measure(layer: str, root: Path, sync: str, n: int) -> float:
    if layer == "raw_commit":
        return raw_commit(root, sync, n)
    if layer == "engine_sql":
        return engine_sql(root, sync, n, savepoint=True)
    if layer == "engine_sql_nosp":
        return engine_sql(root, sync, n, savepoint=False)
    return async_layer(root, sync, n, layer)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synchronous", default="full", choices=("full", "normal", "off"))
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    samples: dict[str, list[float]] = {k: [] for k in LAYERS}
    for _ in range(args.repeat):
        for layer in LAYERS:
            samples[layer].append(measure(layer, args.dir, args.synchronous, args.n))
    print(f"synchronous={args.synchronous}, n={args.n}, repeats={args.repeat} "
          "(µs per operation: median [min..max])")
    report: dict[str, Any] = {}
    for layer, xs in samples.items():
        med = statistics.median(xs)
        report[layer] = {"median": med, "min": min(xs), "max": max(xs), "unit": "us/op",
                         "samples": xs}
        print(f"  {layer:16s} {med:8.1f}  [{min(xs):.1f} .. {max(xs):.1f}]")
    if args.out:
        args.out.write_text(json.dumps({
            "engine": "perdure-step-layers", "backend": "sqlite",
            "synchronous": args.synchronous, "sqlite_version": sqlite3.sqlite_version,
            "n": args.n, "repeat": args.repeat, "workloads": report,
            "notes": ["Sequential operations, fresh database file per layer and repeat; see "
                      "the docstring of bench/step_cost.py for the layers."],
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
