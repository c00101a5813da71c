"""A Perdure worker process driven over a pipe (helper of the wait/failover/memory benchmarks).

    python bench/_agent.py --db URL [--concurrency N] [--park-after S]

Opens ``Engine(url, workflows=bench._app.WORKFLOWS)`` (a worker, default options unless given),
prints ``{"event": "ready", "worker": ID, "pid": PID, "rss_kb": ..., "hwm_kb": ...}`` and then
answers JSON commands, one per stdin line, with one JSON line each on stdout:

``{"cmd": "rss"}``              resident memory of this process (VmRSS / VmHWM, KiB)
``{"cmd": "gc"}``               ``gc.collect()`` then rss
``{"cmd": "active"}``           runs this worker drives right now (coroutines in memory)
``{"cmd": "probe", "n": N}``    start -> first step latency of N runs started in this process
``{"cmd": "claim", "n": N}``    time N claim statements (and N next-wake reads) when nothing is due
``{"cmd": "tasks", "n": N}``    for comparison: N plain asyncio tasks each sleeping a day
``{"cmd": "quit"}``             close the engine (no grace) and exit (also on stdin EOF)

Workflow steps may print ``{"event": "stamp", ...}`` lines too (see ``_app.emit``). With
``--stamp-wakes``, the worker also prints ``{"event": "woke", "t": time.time()}`` each time
another process pokes its wake-up socket (SQLite push), from the callback the socket's reader
calls in the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import threading
import time
from typing import Any

import _app
from _common import rss_kb

from perdure import Engine


def say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def probe(engine: Engine, n: int) -> list[float]:
    out: list[float] = []
    for i in range(n):
        _app.FIRST_STEP_AT.clear()
        t0 = time.perf_counter()
        h = await engine.start(_app.wf_mark, i)
        await h.result(timeout=30)
        out.append((_app.FIRST_STEP_AT[0] - t0) * 1e3)
    return out


async def claim_times(engine: Engine, n: int) -> dict[str, list[float]]:
    worker = engine._worker  # private: bench introspection
    assert worker is not None
    claim: list[float] = []
    wake: list[float] = []
    for _ in range(n):
        now = engine.clock.time()
        t0 = time.perf_counter()
        got = await engine.store.claim(worker=engine.worker_id, keys=worker.keys, limit=64,
                                       now=now, lease_until=now + engine.lease)
        claim.append((time.perf_counter() - t0) * 1e3)
        assert not got, "the claim benchmark expects nothing to be due"
        t0 = time.perf_counter()
        await engine.store.next_wake(worker.keys)
        wake.append((time.perf_counter() - t0) * 1e3)
    return {"claim_ms": claim, "next_wake_ms": wake}


def stamp_wakes(engine: Engine) -> None:
    """Report every push wake-up (bench introspection of the SQLite adapter's waker)."""
    store: Any = engine.store
    wake = store._waker
    if wake is None:
        return

    def stamped() -> None:
        say({"event": "woke", "t": time.time()})
        wake()

    store._waker = stamped


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--park-after", type=float, default=5.0)
    ap.add_argument("--stamp-wakes", action="store_true")
    args = ap.parse_args()

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read_stdin, daemon=True).start()
    tasks: list[asyncio.Task[None]] = []
    engine = Engine(args.db, workflows=_app.WORKFLOWS, concurrency=args.concurrency,
                    park_after=args.park_after)
    await engine.open()
    if args.stamp_wakes:
        stamp_wakes(engine)
    say({"event": "ready", "worker": engine.worker_id, "pid": __import__("os").getpid(),
         **rss_kb()})
    try:
        while True:
            line = await lines.get()
            if not line:
                break
            cmd = json.loads(line)
            name = cmd["cmd"]
            if name == "quit":
                break
            if name == "rss":
                say({"event": "rss", **rss_kb()})
            elif name == "gc":
                gc.collect()
                say({"event": "rss", **rss_kb()})
            elif name == "active":
                w = engine._worker
                say({"event": "active", "n": len(w.active) if w else 0})
            elif name == "probe":
                say({"event": "probe", "ms": await probe(engine, int(cmd["n"]))})
            elif name == "claim":
                say({"event": "claim", **await claim_times(engine, int(cmd["n"]))})
            elif name == "tasks":
                tasks += [asyncio.create_task(asyncio.sleep(86400)) for _ in range(cmd["n"])]
                await asyncio.sleep(0.1)
                say({"event": "rss", "tasks": len(tasks), **rss_kb()})
            else:
                say({"event": "error", "message": f"unknown command {name!r}"})
    finally:
        for t in tasks:
            t.cancel()
        await engine.close(grace=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
