"""Perdure's PostgreSQL write path, layer by layer (µs per journal write, one at a time).

    .venv/bin/python bench/pg_step_cost.py --db postgresql://postgres@127.0.0.1:5432/postgres

On a fresh database (engine schema, one run owned by a fake worker at epoch 1), N sequential
journal writes through each layer, each adding one thing to the one above it:

``raw_insert``       asyncpg, a prepared plain ``INSERT`` into a scratch table, autocommit: the
                     durable single-row commit floor (one round trip, one WAL flush)
``fenced_sql``       the engine's ``put_entries`` statement (unnest of 13 arrays, the fence:
                     the run's row ``FOR SHARE``, ``INSERT ... ON CONFLICT ... RETURNING``) for
                     one entry, on a dedicated connection
``fenced_one``       the single-row ``put_entry`` statement (same fence, scalar parameters), on
                     the same connection
``put_entry``        ``await storage.put_entry(...)``: + the group-commit writer task and the pool
                     (a batch of one entry: the single-row statement)
``write_entry``      ``await storage.write_entry(...)``, what a step does: the lone write, in the
                     caller's task, single-row statement, through the pool
``send_signal`` / ``consume_signal``  the two commits of a signal's path, alternately
                     (``storage.send_signal``, then the run's ``consume_signal`` of it)
``p50_*``            raw_insert, fenced_sql, fenced_one and write_entry again, one of each in
                     turn, n times: the median of each (robust to a load that drifts)
``noop_roundtrip``   for reference: ``SELECT 1`` through the storage's pool
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import Databases, stat

import perdure
from perdure.records import JournalEntry
from perdure.storage.port import NewRun
from perdure.storage.postgres.adapter import PostgresStorage
from perdure.storage.postgres.writer import columns


async def measure(url: str, n: int) -> dict[str, float]:
    import asyncpg

    store = PostgresStorage(url)
    await store.open()
    out: dict[str, float] = {}
    try:
        now = time.time()
        await store.create_run(NewRun("r1", "wf", "1", "[]", now))
        await store.register_worker("w1", host="h", pid=1, pid_start=None, now=now)
        claimed = await store.claim(worker="w1", keys=["wf\x1f1"], limit=1, now=now + 1,
                                    lease_until=now + 3600)
        assert claimed and claimed[0].epoch == 1

        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE scratch (k BIGINT PRIMARY KEY, v TEXT NOT NULL)")
            ins = await conn.prepare("INSERT INTO scratch VALUES ($1, $2)")
            t0 = time.perf_counter()
            for k in range(n):
                await ins.fetch(k, "x" * 64)
            out["raw_insert"] = (time.perf_counter() - t0) / n * 1e6

            sql, names = store._sql["put_entries"]  # private: bench introspection
            stmt = await conn.prepare(sql)
            seq = 0

            def entry(seq: int) -> tuple[Any, ...]:
                return ("r1", 1, "w1", seq, "step", "s", "completed", 1, "2", None, None,
                        time.time(), time.time())

            cols = ("run_id", "epoch", "worker", "seq", "kind", "name", "status", "attempts",
                    "output", "error", "due_at", "started_at", "finished_at")
            t0 = time.perf_counter()
            for _ in range(n):
                by_name = dict(zip(cols, columns([entry(seq)]), strict=True))  # type: ignore[list-item]
                rows = await stmt.fetch(*(by_name[k] for k in names))
                assert rows
                seq += 1
            out["fenced_sql"] = (time.perf_counter() - t0) / n * 1e6

            one_sql, one_names = store._sql["put_entry"]  # the single-row statement
            t0 = time.perf_counter()
            for _ in range(n):
                by_name = dict(zip(cols, entry(seq), strict=True))
                status = await conn.execute(one_sql, *(by_name[k] for k in one_names))
                assert status.endswith(" 1")
                seq += 1
            out["fenced_one"] = (time.perf_counter() - t0) / n * 1e6

            # The same, one operation of each in turn, timed one by one: on a loaded machine
            # the layers above drift with the load between them; here each sees the same.
            times: dict[str, list[float]] = {"p50_raw_insert": [], "p50_fenced_sql": [],
                                             "p50_fenced_one": [], "p50_write_entry": []}
            for i in range(n):
                t0 = time.perf_counter()
                await ins.fetch(n + i, "x" * 64)
                t1 = time.perf_counter()
                by_name = dict(zip(cols, columns([entry(seq)]), strict=True))  # type: ignore[list-item]
                assert await stmt.fetch(*(by_name[k] for k in names))
                t2 = time.perf_counter()
                by_name = dict(zip(cols, entry(seq + 1), strict=True))
                await conn.execute(one_sql, *(by_name[k] for k in one_names))
                t3 = time.perf_counter()
                await store.write_entry("r1", 1, "w1", JournalEntry(
                    seq + 2, "step", "s", "completed", 1, "2", started_at=time.time(),
                    finished_at=time.time()))
                t4 = time.perf_counter()
                seq += 3
                for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    times[key].append(dt * 1e6)
            for key, values in times.items():
                out[key] = statistics.median(values)
        finally:
            await conn.close()

        t0 = time.perf_counter()
        for _ in range(n):
            await store.put_entry("r1", 1, "w1", JournalEntry(
                seq, "step", "s", "completed", 1, "2", started_at=time.time(),
                finished_at=time.time()))
            seq += 1
        out["put_entry"] = (time.perf_counter() - t0) / n * 1e6

        t0 = time.perf_counter()
        for _ in range(n):
            await store.write_entry("r1", 1, "w1", JournalEntry(
                seq, "step", "s", "completed", 1, "2", started_at=time.time(),
                finished_at=time.time()))
            seq += 1
        out["write_entry"] = (time.perf_counter() - t0) / n * 1e6

        # A signal sent to the run and consumed by it, the two commits of a signal's path
        # (send_signal: lock the run's row, insert, wake, NOTIFY; consume_signal: mark the
        # oldest pending one consumed and journal it, fenced).
        send = consume = 0.0
        for _ in range(n // 2):
            t0 = time.perf_counter()
            assert await store.send_signal("r1", "ping", "1", None, time.time()) == "sent"
            t1 = time.perf_counter()
            got = await store.consume_signal("r1", 1, "w1", seq=seq, name="ping",
                                             now=time.time())
            t2 = time.perf_counter()
            assert got == "1"
            seq += 1
            send += t1 - t0
            consume += t2 - t1
        out["send_signal"] = send / (n // 2) * 1e6
        out["consume_signal"] = consume / (n // 2) * 1e6

        async def noop(c: Any, _retrying: bool) -> Any:
            return await c.fetchval("SELECT 1")

        t0 = time.perf_counter()
        for _ in range(n):
            await store._call(noop, retry=True)
        out["noop_roundtrip"] = (time.perf_counter() - t0) / n * 1e6
    finally:
        await store.close()
    return out


async def amain(args: argparse.Namespace) -> dict[str, list[float]]:
    dbs = Databases(args.db, args.dir)
    res: dict[str, list[float]] = {}
    for r in range(args.repeat):
        url = await dbs.fresh("layers")
        try:
            one = await measure(url, args.n)
        finally:
            await dbs.drop(url)
        for k, v in one.items():
            res.setdefault(k, []).append(v)
        print(f"[repeat {r + 1}/{args.repeat}] " + ", ".join(f"{k} {v:.0f} µs"
                                                             for k, v in one.items()),
              file=sys.stderr, flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a PostgreSQL admin URL")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    raw = asyncio.run(amain(args))
    report = {
        "engine": "perdure", "version": perdure.__version__, "backend": "postgresql",
        "python": platform.python_version(), "n": args.n, "repeat": args.repeat,
        "workloads": {k: stat(v, "us/op") for k, v in raw.items()}, "notes": [],
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    for k, v in raw.items():
        print(f"  {k:16s} median {statistics.median(v):8.1f} µs  [{min(v):.1f} .. {max(v):.1f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
