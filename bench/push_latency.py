"""Another process's commit -> the worker acts on it, on one SQLite file (issue 14, target 3).

    .venv/bin/python bench/push_latency.py --out push.json

A worker subprocess (``_agent.py``, engine defaults: ``poll_interval`` 50 ms) and this process
as a client (``Engine(worker=False)``), as a web server next to a ``perdure worker``. Latency =
``time.time()`` in the worker when the step ``_app.emit`` starts - ``time.time()`` just before
the client's call (same host clock). Modes (``--modes``):

``start``
    ``client.start(wf_emit, i)``: the worker claims the new run and runs its first step.
``signal``
    ``handle.signal("ping", i)`` to a run of ``ping_loop`` waiting in memory; it runs ``emit``.
``cancel``
    ``client.cancel(id)`` of a run of ``cancel_me`` waiting in memory; its ``except
    Cancelled`` runs ``emit``.

Each mode runs twice per round, interleaved: ``push`` (as shipped: the client pokes the
worker's Unix datagram socket after its commit) and ``poll`` (this process's ``_push`` replaced
by a no-op, so the worker finds the commit on its ``PRAGMA data_version`` poll, as before
push). 10-60 ms (uniformly random) between samples, so the sends do not lock in phase with the
50 ms poll. A fresh database (synchronous=FULL) and worker per mode and round; the first 10
samples of each are warm-up.
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
from perdure.storage.sqlite.push import SqlitePush

WARMUP = 10
MODES = ("start", "signal", "cancel")


async def _no_push(self: SqlitePush) -> None:
    return None


#: time.time() at which this process's last push began (``variant`` push)
PUSHED_AT: list[float] = []
_real_push = SqlitePush._push


async def _timed_push(self: SqlitePush) -> None:
    PUSHED_AT.append(time.time())
    await _real_push(self)


async def measure(url: str, mode: str, n: int
                  ) -> tuple[list[float], list[float], list[float]]:
    agent = Agent(url, park_after=3600.0, stamp_wakes=True)
    await agent.start()
    out: list[float] = []
    after: list[float] = []
    woke: list[float] = []
    try:
        async with Engine(url, workflows=_app.WORKFLOWS, worker=False) as client:
            ping = None
            if mode == "signal":
                ping = await client.start(_app.ping_loop, n + WARMUP, True)
                await asyncio.sleep(0.3)
            for i in range(n + WARMUP):
                handle = None
                if mode == "cancel":
                    handle = await client.start(_app.cancel_me, i)
                    await _waiting(handle)
                await asyncio.sleep(random.uniform(0.01, 0.06))
                PUSHED_AT.clear()
                seen = len(agent.wakes)
                t0 = time.time()
                if mode == "start":
                    await client.start(_app.wf_emit, i)
                elif mode == "signal":
                    assert ping is not None
                    await ping.signal("ping", i)
                else:
                    assert handle is not None
                    await handle.cancel()
                t1 = time.time()
                stamp = await asyncio.wait_for(agent.stamps.get(), 30)
                assert stamp["i"] == i
                if i >= WARMUP:
                    out.append((stamp["t"] - t0) * 1e3)
                    after.append((stamp["t"] - t1) * 1e3)
                    if PUSHED_AT and len(agent.wakes) > seen:
                        woke.append((agent.wakes[seen]["t"] - PUSHED_AT[-1]) * 1e3)
            if ping is not None:
                await ping.result(timeout=30)
    finally:
        await agent.quit()
    return out, after, woke


async def _waiting(handle: Any) -> None:
    """Until the run waits in memory (its wait journaled)."""
    while not [e for e in await handle.journal() if e.status == "waiting"]:
        await asyncio.sleep(0.005)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases("sqlite", args.dir)
    modes = [m for m in args.modes.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    per: dict[str, list[list[float]]] = {}
    for r in range(args.repeat):
        for m in modes:
            for v in variants:
                SqlitePush._push = (  # type: ignore[method-assign]
                    _timed_push if v == "push" else _no_push)
                url = await dbs.fresh("push")
                try:
                    xs, ys, ws = await measure(url, m, args.n)
                finally:
                    SqlitePush._push = _real_push  # type: ignore[method-assign]
                    await dbs.drop(url)
                per.setdefault(f"{m}_{v}", []).append(xs)
                per.setdefault(f"{m}_{v}_after_call", []).append(ys)
                if ws:
                    per.setdefault(f"{m}_{v}_wake", []).append(ws)
                print(f"[round {r + 1}/{args.repeat}] {m} {v}: p50 {pct(xs, 50):.2f} ms, "
                      f"p99 {pct(xs, 99):.2f} ms; from the call's return: p50 "
                      f"{pct(ys, 50):.2f} ms, p99 {pct(ys, 99):.2f} ms; push -> worker woken: p50 "
                      f"{pct(ws, 50):.2f} ms, p99 {pct(ws, 99):.2f} ms (n={len(xs)})",
                      file=sys.stderr, flush=True)
    workloads: dict[str, Any] = {}
    for key, reps in per.items():
        pooled = [x for xs in reps for x in xs]
        workloads[f"{key}_p50"] = stat([pct(xs, 50) for xs in reps], "ms (p50 per round)",
                                       pooled=pct(pooled, 50), n=len(pooled))
        workloads[f"{key}_p99"] = stat([pct(xs, 99) for xs in reps], "ms (p99 per round)",
                                       pooled=pct(pooled, 99), n=len(pooled))
        workloads[f"{key}_max"] = stat([max(xs) for xs in reps], "ms (max per round)")
    return workloads


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--variants", default="push,poll")
    ap.add_argument("-n", type=int, default=200, help="samples per mode, variant and round")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    workloads = asyncio.run(amain(args))
    return report("sqlite", workloads, t0, args.out, width=20, digits=3,
                  notes=[f"modes: {args.modes}; variants: {args.variants}; SQLite at "
                         "synchronous=FULL; worker with engine defaults (poll_interval 50 ms)"],
                  repeat=args.repeat, n=args.n)


if __name__ == "__main__":
    raise SystemExit(main())
