"""Stream write -> read latency on Perdure (SQLite or PostgreSQL).

    .venv/bin/python bench/stream_latency.py --db sqlite --out s.json
    .venv/bin/python bench/stream_latency.py --db postgresql://postgres@127.0.0.1:5432/postgres

A run of ``stream_bench`` writes N items to stream ``s``, each ``{"i": i, "t": time.time()}``
stamped just before ``await out.write(...)``, with a step sleeping 10-60 ms (uniformly random,
chosen by the client and passed in) before each write, so that writes do not lock in phase
with SQLite's 50 ms check. A reader tails the stream with ``handle.read_stream``; latency =
``time.time()`` when the item reaches the reader - its stamp (same host clock): the write's
commit, the wake-up of the reader and its read.

Modes (``--modes``, all by default):

``local``
    One process: the engine that drives the run also reads (woken in memory).
``remote``
    Two processes: a worker subprocess (this script with ``--worker``) drives the run; this
    process reads through a client ``Engine(worker=False)`` with the default options. On
    PostgreSQL the reader is woken by a NOTIFY on the talk channel; on SQLite by its check of
    ``PRAGMA data_version`` every ``poll_interval`` (50 ms).
``remote_poll5``
    As ``remote``, with the reader's ``poll_interval=0.005`` (only SQLite polls; on
    PostgreSQL this equals ``remote``).

Each repeat uses a fresh database (a new SQLite file at synchronous=FULL, or a new PostgreSQL
database); the first 10 items of each repeat are warm-up and not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import perdure
from perdure import Engine, step, workflow

WARMUP = 10


@step(name="stream_bench_pause")
async def pause(ms: float) -> None:
    await asyncio.sleep(ms / 1000)


@workflow(name="stream_bench")
async def paced(delays_ms: list[float]) -> int:
    async with perdure.stream("s") as out:
        for i, ms in enumerate(delays_ms):
            await pause(ms)
            # Not journaled on purpose: the stamp is the moment of the write (a benchmark
            # run is never replayed).
            await out.write({"i": i, "t": time.time()})
    return len(delays_ms)


WORKFLOWS = [paced]


async def read_latencies(engine: Engine, run_id: str) -> list[float]:
    out: list[float] = []
    async for item in engine.handle(run_id).read_stream("s"):
        got = time.time()
        if item["i"] >= WARMUP:
            out.append((got - item["t"]) * 1e3)
    return out


def delays(n: int) -> list[float]:
    return [random.uniform(10, 60) for _ in range(n + WARMUP)]


async def local(url: str, n: int) -> list[float]:
    async with Engine(url, workflows=WORKFLOWS) as engine:
        handle = await engine.start(paced, delays(n))
        xs = await read_latencies(engine, handle.id)
        await handle.result(timeout=60)
    return xs


async def remote(url: str, n: int, *, poll_interval: float) -> list[float]:
    from _common import child_cmd

    worker = await asyncio.create_subprocess_exec(
        *child_cmd("stream_latency.py", "--worker", "--db", url),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), 60)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"the worker did not start: {line!r}")
        async with Engine(url, workflows=WORKFLOWS, worker=False,
                          poll_interval=poll_interval) as client:
            handle = await client.start(paced, delays(n))
            xs = await read_latencies(client, handle.id)
            await handle.result(timeout=60)
        return xs
    finally:
        assert worker.stdin is not None
        worker.stdin.close()
        await asyncio.wait_for(worker.wait(), 60)


async def serve(url: str) -> None:
    """``--worker``: drive the runs until stdin closes."""
    async with Engine(url, workflows=WORKFLOWS, shutdown_grace=1.0):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


MODES = ("local", "remote", "remote_poll5")


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    from _common import Databases, pct, stat

    dbs = Databases(args.db, args.dir)
    modes = [m for m in args.modes.split(",") if m]
    per: dict[str, list[list[float]]] = {m: [] for m in modes}
    for r in range(args.repeat):
        for m in modes:
            url = await dbs.fresh("stream")
            try:
                if m == "local":
                    xs = await local(url, args.n)
                else:
                    xs = await remote(url, args.n,
                                      poll_interval=0.005 if m == "remote_poll5" else 0.05)
            finally:
                await dbs.drop(url)
            per[m].append(xs)
            print(f"[repeat {r + 1}/{args.repeat}] {m}: p50 {pct(xs, 50):.2f} ms, "
                  f"p99 {pct(xs, 99):.2f} ms (n={len(xs)})", file=sys.stderr, flush=True)
    workloads: dict[str, Any] = {}
    for m, reps in per.items():
        if not reps:
            continue
        pooled = [x for xs in reps for x in xs]
        workloads[f"{m}_p50"] = stat([pct(xs, 50) for xs in reps], "ms (p50 per repeat)",
                                     pooled=pct(pooled, 50), n=len(pooled))
        workloads[f"{m}_p99"] = stat([pct(xs, 99) for xs in reps], "ms (p99 per repeat)",
                                     pooled=pct(pooled, 99), n=len(pooled))
        workloads[f"{m}_max"] = stat([max(xs) for xs in reps], "ms (max per repeat)")
    return workloads


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL "
                    "(with --worker: the database URL itself)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("-n", type=int, default=200, help="items per repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.worker:
        asyncio.run(serve(args.db))
        return 0
    from _common import report

    t0 = time.perf_counter()
    workloads = asyncio.run(amain(args))
    return report(args.db, workloads, t0, args.out, width=18, digits=2,
                  notes=[f"modes: {args.modes}; SQLite at synchronous=FULL (the default); "
                         "10-60 ms between writes"], repeat=args.repeat, n=args.n)


if __name__ == "__main__":
    raise SystemExit(main())
