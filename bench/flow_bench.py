"""Flow control, Perdure side: the cost of a queued start, a queue of concurrency 10 draining
1,000 runs (the DBOS comparison, ``flow_dbos.py``), a step rate limit over a minute, and the
start latency of a small key behind a big one.

    .venv/bin/python bench/flow_bench.py --db sqlite --out /tmp/flow-sqlite.json
    .venv/bin/python bench/flow_bench.py --db postgresql://u@host:5432/postgres --out f.json

Workloads (each on a fresh database, in one process: the engine starts and executes):

``overhead``
    500 runs of a one-step workflow, all started then all awaited; the same with the workflow
    in a queue with every kind of limit set wide open (concurrency, per worker, per key, a
    rate) and runs spread over 20 keys. Repeats alternate plain and queued; per-run cost =
    elapsed / 500. Also 200 sequential start -> result round trips of each.
``drain``
    ``Queue("q", concurrency=10)``, 1,000 runs of one step enqueued at once: the time from the
    first start to the last result (runs/s), and each run's start latency (its ``start``
    call -> its step's first line), p50/p99.
``idle``
    The same queue, idle: 100 single runs one after another (random 0-20 ms gaps), the start
    -> first-line latency p50/p99: what a queue adds to a lone run.
``rate``
    A step limit ``Rate(10, per=1 s)`` and 1,000 runs that want it, for 60 s: grants observed
    per second (by the database's grant log) against the configured 10/s, and the most grants
    in any 1 s window.
``fairness``
    ``Queue(concurrency=5)``, key A with 5,000 queued runs of a 2 ms step; once 100 of them
    started, key B enqueues 10: how many starts and how long until B's 10th started,
    against the fair-share bound (K keys * n runs + the queue's concurrency = 2 * 10 + 5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import perdure
from perdure import Engine, Limit, Queue, Rate, step, workflow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Databases, Sql, is_pg, pct, stat

first_line: dict[str, float] = {}
open_q = Queue("open", concurrency=100_000, per_worker=100_000, per_key_concurrency=100_000,
               rate=Rate(1_000_000, per=timedelta(seconds=1)))
ten = Queue("ten", concurrency=10)
five = Queue("five", concurrency=5)
api = Limit("api", rate=Rate(10, per=timedelta(seconds=1)))


@step
async def s(i: int) -> int:
    return i + 1


@step
async def marked(i: int) -> int:
    first_line[perdure.run_id()] = time.perf_counter()
    return i + 1


@step
async def work(i: int) -> int:
    first_line[perdure.run_id()] = time.perf_counter()
    await asyncio.sleep(0.002)
    return i


@step(limits=[api])
async def call_api(i: int) -> int:
    return i


@workflow
async def plain(i: int) -> int:
    return await s(i)


@workflow(queue=open_q)
async def queued(i: int) -> int:
    return await s(i)


@workflow(queue=ten)
async def in_ten(i: int) -> int:
    return await marked(i)


@workflow(queue=five)
async def in_five(i: int) -> int:
    return await work(i)


@workflow
async def metered(i: int) -> int:
    return await call_api(i)


ALL = [plain, queued, in_ten, in_five, metered]


async def _engine(url: str) -> Engine:
    engine = Engine(url, workflows=ALL, limits=[api], shutdown_grace=1.0)
    await engine.open()
    for i in range(20):  # warm-up, uncounted
        await (await engine.start(plain, i)).result(timeout=30)
        await (await engine.start(queued, i, key=f"k{i}")).result(timeout=30)
    return engine


async def overhead(dbs: Databases, repeats: int) -> dict[str, Any]:
    n, seq = 500, 200
    batch: dict[str, list[float]] = {"plain": [], "queued": []}
    serial: dict[str, list[float]] = {"plain": [], "queued": []}
    for _ in range(repeats):
        for kind in ("plain", "queued"):
            url = await dbs.fresh("ovh")
            engine = await _engine(url)
            try:
                wf = plain if kind == "plain" else queued
                opts = (lambda i: {}) if kind == "plain" else (lambda i: {"key": f"k{i % 20}"})
                t0 = time.perf_counter()
                handles = [await engine.start(wf, i, **opts(i)) for i in range(n)]
                for h in handles:
                    await h.result(timeout=120)
                batch[kind].append((time.perf_counter() - t0) / n * 1000)
                t0 = time.perf_counter()
                for i in range(seq):
                    await (await engine.start(wf, i, **opts(i))).result(timeout=30)
                serial[kind].append((time.perf_counter() - t0) / seq * 1000)
            finally:
                await engine.close()
                await dbs.drop(url)
    ratio = [q / p for p, q in zip(batch["plain"], batch["queued"], strict=True)]
    ratio_seq = [q / p for p, q in zip(serial["plain"], serial["queued"], strict=True)]
    return {"plain_batch": stat(batch["plain"], "ms/run"),
            "queued_batch": stat(batch["queued"], "ms/run"),
            "queued_over_plain_batch": stat(ratio, "x"),
            "plain_serial": stat(serial["plain"], "ms/run"),
            "queued_serial": stat(serial["queued"], "ms/run"),
            "queued_over_plain_serial": stat(ratio_seq, "x")}


async def drain(dbs: Databases, repeats: int) -> dict[str, Any]:
    runs_s, p50, p99 = [], [], []
    for _ in range(repeats):
        url = await dbs.fresh("drain")
        engine = await _engine(url)
        try:
            first_line.clear()
            started: dict[str, float] = {}
            t0 = time.perf_counter()
            handles = []
            for i in range(1000):
                at = time.perf_counter()
                h = await engine.start(in_ten, i)
                started[h.id] = at
                handles.append(h)
            for h in handles:
                await h.result(timeout=300)
            elapsed = time.perf_counter() - t0
            lat = [(first_line[r] - started[r]) * 1000 for r in started]
            runs_s.append(1000 / elapsed)
            p50.append(pct(lat, 50))
            p99.append(pct(lat, 99))
        finally:
            await engine.close()
            await dbs.drop(url)
    return {"drain_runs_per_s": stat(runs_s, "runs/s"),
            "drain_start_p50": stat(p50, "ms"), "drain_start_p99": stat(p99, "ms")}


async def idle(dbs: Databases, repeats: int) -> dict[str, Any]:
    p50, p99 = [], []
    for _ in range(repeats):
        url = await dbs.fresh("idle")
        engine = await _engine(url)
        try:
            lat = []
            for i in range(100):
                await asyncio.sleep(random.uniform(0, 0.02))
                first_line.clear()
                at = time.perf_counter()
                h = await engine.start(in_ten, i)
                await h.result(timeout=30)
                lat.append((first_line[h.id] - at) * 1000)
            p50.append(pct(lat, 50))
            p99.append(pct(lat, 99))
        finally:
            await engine.close()
            await dbs.drop(url)
    return {"idle_start_p50": stat(p50, "ms"), "idle_start_p99": stat(p99, "ms")}


async def rate(dbs: Databases, seconds: float) -> dict[str, Any]:
    url = await dbs.fresh("rate")
    engine = await _engine(url)
    sql = await Sql(url).open()
    try:
        handles = [await engine.start(metered, i) for i in range(1000)]
        first = await sql.wait_for("SELECT min(at) FROM perdure_rate_grants "
                                   "WHERE scope = 'limit:api'", bool,
                                   timeout=60, what="a first grant")
        # From the first grant on, for `seconds`: how many grants the log holds.
        await asyncio.sleep(max(0.0, float(first) + seconds + 0.5 - time.time()))
        rows = await sql.rows("SELECT at FROM perdure_rate_grants WHERE scope = 'limit:api' "
                              "ORDER BY at")
        times = [float(r[0]) for r in rows]
        t0 = times[0]
        window = [t for t in times if t < t0 + seconds]
        most = max(sum(1 for u in times[i:i + 40] if u < t + 1.0)
                   for i, t in enumerate(times))
        for h in handles:
            await engine.cancel(h.id)
        return {"rate_configured": 10.0, "rate_observed_per_s": len(window) / seconds,
                "rate_grants_in_window": len(window), "rate_seconds": seconds,
                "rate_max_in_any_1s": most}
    finally:
        await sql.close()
        await engine.close()
        await dbs.drop(url)


async def fairness(dbs: Databases, repeats: int) -> dict[str, Any]:
    starts_after, waited = [], []
    for _ in range(repeats):
        url = await dbs.fresh("fair")
        client = Engine(url, workflows=ALL, worker=False)
        await client.open()
        try:
            for i in range(0, 5000, 100):
                await asyncio.gather(*(client.start(in_five, j, key="A")
                                       for j in range(i, i + 100)))
            first_line.clear()
            engine = Engine(url, workflows=ALL, limits=[api], shutdown_grace=1.0)
            await engine.open()
            try:
                while len(first_line) < 100:
                    await asyncio.sleep(0.005)
                before = len(first_line)
                t_arrive = time.perf_counter()
                small = [await client.start(in_five, i, key="B") for i in range(10)]
                for h in small:
                    await h.result(timeout=60)
                order = sorted(first_line.items(), key=lambda kv: kv[1])
                ids = [r for r, _ in order]
                last_b = max(ids.index(h.id) for h in small)
                starts_after.append(last_b + 1 - before)
                waited.append((first_line[ids[last_b]] - t_arrive) * 1000)
            finally:
                await engine.close()
        finally:
            await client.close()
            await dbs.drop(url)
    return {"fair_starts_until_last_b": stat([float(x) for x in starts_after], "starts",
                                             bound=2 * 10 + 5),
            "fair_ms_until_last_b": stat(waited, "ms")}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--dir", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rate-seconds", type=float, default=60.0)
    ap.add_argument("--only", default="overhead,drain,idle,rate,fairness")
    ap.add_argument("--out")
    args = ap.parse_args()
    dbs = Databases(args.db, Path(args.dir))
    wanted = args.only.split(",")
    results: dict[str, Any] = {}
    try:
        if "overhead" in wanted:
            results.update(await overhead(dbs, args.repeat))
        if "drain" in wanted:
            results.update(await drain(dbs, args.repeat))
        if "idle" in wanted:
            results.update(await idle(dbs, args.repeat))
        if "rate" in wanted:
            results.update(await rate(dbs, args.rate_seconds))
        if "fairness" in wanted:
            results.update(await fairness(dbs, args.repeat))
    finally:
        await dbs.drop_all()
    report = {"engine": "perdure", "version": perdure.__version__,
              "backend": "postgresql" if is_pg(args.db) else "sqlite",
              "python": platform.python_version(), "workloads": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    asyncio.run(main())
