"""Signal -> resume latency on Perdure (SQLite or PostgreSQL).

    .venv/bin/python bench/signal_latency.py --db sqlite --out s.json
    .venv/bin/python bench/signal_latency.py --db postgresql://postgres@127.0.0.1:5432/postgres

Modes (``--modes``, all by default):

``local``
    One process: an ``Engine`` that both sends and executes. A run of ``_app.ping_loop`` waits
    for signal "ping" in a loop; latency = ``perf_counter`` just before ``await
    handle.signal(...)`` -> the workflow's first line after ``wait_for_signal`` returns (a hook
    called from the workflow). N samples per repeat, 5 ms apart (the run is back in its wait).
``remote``
    Two processes: a worker subprocess (``_agent.py``) drives the run; this process is a client
    (``Engine(worker=False)``) that sends. After each signal the workflow runs the step
    ``_app.emit``, whose body takes ``time.time()``; latency = that - ``time.time()`` just
    before the send (same host clock). The run waits in memory (its wait lingers
    ``park_after`` = 5 s), as it does when signals come often. 10-60 ms (uniformly random)
    between samples, so that the sends do not lock in phase with SQLite's 50 ms check.
``parked``
    As ``remote``, but the worker runs with ``park_after=0.05``: the run has parked (no
    coroutine; a row waiting for "signal:ping") when the signal arrives, so the latency includes
    the claim and the replay of its journal. One fresh run per sample, sent 0.20-0.25 s after
    its start.

Each repeat uses a fresh database (a new SQLite file at synchronous=FULL, or a new PostgreSQL
database); the first 10 samples of each repeat are warm-up and not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import _app
from _common import Agent, Databases, pct, report, stat

from perdure import Engine

WARMUP = 10


async def local(url: str, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    waiting: dict[int, asyncio.Future[float]] = {}

    def hook(payload: Any) -> None:
        fut = waiting.pop(payload, None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    _app.ON_SIGNAL[:] = [hook]
    out: list[float] = []
    async with Engine(url, workflows=_app.WORKFLOWS) as engine:
        h = await engine.start(_app.ping_loop, n + WARMUP, False)
        for i in range(n + WARMUP):
            await asyncio.sleep(0.005)
            fut = waiting[i] = loop.create_future()
            t0 = time.perf_counter()
            await h.signal("ping", i)
            t1 = await asyncio.wait_for(fut, 30)
            if i >= WARMUP:
                out.append((t1 - t0) * 1e3)
        await h.result(timeout=30)
    _app.ON_SIGNAL.clear()
    return out


async def remote(url: str, n: int, *, parked: bool) -> list[float]:
    agent = Agent(url, park_after=0.05 if parked else 5.0)
    await agent.start()
    out: list[float] = []
    try:
        async with Engine(url, workflows=_app.WORKFLOWS, worker=False) as client:
            if parked:
                for i in range(n + WARMUP):
                    h = await client.start(_app.ping_loop, 1, True)
                    # claimed, waited 50 ms in memory, parked (random: no phase lock with
                    # the worker's 50 ms check on SQLite)
                    await asyncio.sleep(random.uniform(0.2, 0.25))
                    t0 = time.time()
                    await h.signal("ping", i)
                    stamp = await asyncio.wait_for(agent.stamps.get(), 30)
                    assert stamp["i"] == i
                    if i >= WARMUP:
                        out.append((stamp["t"] - t0) * 1e3)
            else:
                h = await client.start(_app.ping_loop, n + WARMUP, True)
                await asyncio.sleep(0.3)
                for i in range(n + WARMUP):
                    await asyncio.sleep(random.uniform(0.01, 0.06))
                    t0 = time.time()
                    await h.signal("ping", i)
                    stamp = await asyncio.wait_for(agent.stamps.get(), 30)
                    assert stamp["i"] == i
                    if i >= WARMUP:
                        out.append((stamp["t"] - t0) * 1e3)
                await h.result(timeout=30)
    finally:
        await agent.quit()
    return out


MODES = ("local", "remote", "parked")


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases(args.db, args.dir)
    modes = [m for m in args.modes.split(",") if m]
    per: dict[str, list[list[float]]] = {m: [] for m in modes}
    for r in range(args.repeat):
        for m in modes:
            url = await dbs.fresh("sig")
            try:
                n = args.n if m != "parked" else args.parked_n
                if m == "local":
                    xs = await local(url, n)
                else:
                    xs = await remote(url, n, parked=(m == "parked"))
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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("-n", type=int, default=200, help="samples per repeat (local, remote)")
    ap.add_argument("--parked-n", type=int, default=30, help="samples per repeat (parked)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    workloads = asyncio.run(amain(args))
    return report(args.db, workloads, t0, args.out, width=14, digits=3,
                  notes=[f"modes: {args.modes}; SQLite at synchronous=FULL (the default)"],
                  repeat=args.repeat, n=args.n, parked_n=args.parked_n)


if __name__ == "__main__":
    raise SystemExit(main())
