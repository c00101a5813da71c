"""Push between worker processes on PostgreSQL: child → parent wake-up, and waits after a restart.

    .venv/bin/python -m bench.pg_push --db postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/pg_push.py --db ... [--repeat 3] [--restarts 3] [--out FILE]

Workloads (each on a fresh database; worker processes are this script with ``--worker``):

``forced``   two workers with one slot each; 60 parents one after another. A parent holds its
             worker's only slot while it waits in memory for its child (``park_after`` 5 s),
             so every child runs on the other worker: its end reaches the parent only by push.
``user``     as a new user would try it: two workers with the defaults, 45 parents one after
             another, each child wherever the claims put it.
``restart``  (``--restarts N``, a throwaway server of its own from tests/pgserver.py, since the
             benchmark's shared server must not restart) one worker; a run waiting in memory
             for a signal and a parked one; the server stops for 3 s and comes back; the signal
             is sent at once: seconds from the server's return to each run's completion.

Latency of a wake-up = the parent's resumption (the wall clock in the step right after
``child.result()``) - the child's end (its row's ``updated_at``: the engine's clock at
``finish_run``, synchronized to the server's, which is this machine's). Every worker and the
server share this machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for python -m bench.pg_push

from _common import Databases, child_cmd, pct, report, stat

import perdure
from perdure import Engine, step, workflow


@step
async def stamp() -> float:
    return time.time()


@workflow
async def kid() -> float:
    return await stamp()


@workflow
async def parent() -> float:
    """Start a child, wait for it, then stamp the resumption."""
    child = await perdure.start_child(kid)
    await child.result()
    return await stamp()


@workflow
async def waiter() -> str:
    return str(await perdure.wait_for_signal("go", timeout=3600))


@workflow
async def napper(when: float) -> float:
    await perdure.sleep_until(datetime.fromtimestamp(when, UTC))
    return await stamp()


WORKFLOWS = [kid, parent, waiter, napper]


# -- the worker processes -------------------------------------------------------------------


async def worker_main(url: str, concurrency: int, park_after: float) -> None:
    async with Engine(url, workflows=WORKFLOWS, concurrency=concurrency,
                      park_after=park_after):
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin


class Workers:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, url: str, *, concurrency: int = 100, park_after: float = 5.0) -> None:
        proc = subprocess.Popen(
            child_cmd("pg_push.py", "--worker", "--db", url, "--concurrency", str(concurrency),
                      "--park-after", str(park_after)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"worker failed to start: {line!r}")
        self.procs.append(proc)

    def stop(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


async def _latencies(client: Engine, ids: list[str]) -> list[float]:
    """ms from each child's end to its parent's resumption."""
    out = []
    for run_id in ids:
        resumed = await client.handle(run_id).result(timeout=60)
        child = await client.status(f"{run_id}/0")
        out.append((resumed - child.updated_at.timestamp()) * 1e3)
    return out


async def forced(url: str, n: int) -> list[float]:
    workers = Workers()
    try:
        for _ in range(2):
            workers.start(url, concurrency=1)
        async with Engine(url, workflows=WORKFLOWS, worker=False) as client:
            ids = []
            for i in range(n):
                h = await client.start(parent, id=f"forced-{i}")
                await h.result(timeout=60)
                ids.append(h.id)
            return await _latencies(client, ids)
    finally:
        workers.stop()


async def user(url: str, n: int) -> list[float]:
    workers = Workers()
    try:
        for _ in range(2):
            workers.start(url)
        async with Engine(url, workflows=WORKFLOWS, worker=False) as client:
            ids = []
            for i in range(n):
                h = await client.start(parent, id=f"user-{i}")
                await h.result(timeout=60)
                ids.append(h.id)
            return await _latencies(client, ids)
    finally:
        workers.stop()


async def restart(outage: float) -> dict[str, float]:
    """Seconds from the server's return to the completion of a run waiting in memory for a
    signal (sent then), a parked one, and a run whose timer fell due during the outage."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pgserver import PostgresServer

    server = PostgresServer()
    server.start()
    workers = Workers()
    try:
        url = server.url()
        async with Engine(url, workflows=WORKFLOWS, worker=False) as client:
            pass  # migrate before the workers race to
        workers.start(url)
        workers.start(url, park_after=0.1)  # its waits park at once
        async with Engine(url, workflows=WORKFLOWS, worker=False) as client:
            hs = [await client.start(waiter, id=f"w{i}") for i in range(4)]
            nap = await client.start(napper, time.time() + 1.0, id="nap")
            await asyncio.sleep(0.5)  # let them reach their waits (in memory or parked)
            server.halt()
            await asyncio.sleep(outage)
            server.resume()
            back = time.time()
            for h in hs:
                assert await client.signal(h.id, "go", "after")
            for h in [*hs, nap]:
                await h.result(timeout=60)
            ends = [(await client.status(h.id)).updated_at.timestamp() - back for h in hs]
            return {"signal_in_memory_or_parked_max_s": max(ends),
                    "timer_due_during_outage_s": (await nap.result()) - back}
    finally:
        workers.stop()
        server.stop()


async def amain(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    dbs = Databases(args.db, Path(__file__).resolve().parent) if args.db else None
    res: dict[str, list[float]] = {}
    for r in range(args.repeat if dbs else 0):
        for name, fn, n in (("forced", forced, args.forced), ("user", user, args.user)):
            if n == 0:
                continue
            assert dbs is not None
            url = await dbs.fresh("push")
            try:
                ms = await fn(url, n)
            finally:
                await dbs.drop(url)
            for q, v in (("p50", pct(ms, 50)), ("p99", pct(ms, 99)), ("max", max(ms))):
                res.setdefault(f"{name}_{q}", []).append(v)
            res.setdefault(f"{name}_over_500ms", []).append(float(sum(m > 500 for m in ms)))
            print(f"[repeat {r + 1}] {name}: p50 {pct(ms, 50):.1f} p99 {pct(ms, 99):.1f} "
                  f"max {max(ms):.1f} ms, {sum(m > 500 for m in ms)} over 500 ms",
                  file=sys.stderr, flush=True)
    for r in range(args.restarts):
        one = await restart(args.outage)
        for k, v in one.items():
            res.setdefault(f"restart_{k}", []).append(v)
        print(f"[restart {r + 1}] {one}", file=sys.stderr, flush=True)
    return {k: stat(v, "s" if k.startswith("restart") else
                    ("runs" if k.endswith("500ms") else "ms")) for k, v in res.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a PostgreSQL admin URL (forced and user workloads)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--forced", type=int, default=60, help="parents in 'forced' (0: skip)")
    ap.add_argument("--user", type=int, default=45, help="parents in 'user' (0: skip)")
    ap.add_argument("--restarts", type=int, default=0)
    ap.add_argument("--outage", type=float, default=3.0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--dir", type=Path, help="(ignored; accepted like the other scripts)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--park-after", type=float, default=5.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        asyncio.run(worker_main(args.db, args.concurrency, args.park_after))
        return 0
    started = time.perf_counter()
    workloads = asyncio.run(amain(args))
    return report(args.db or "postgresql://", workloads, started, args.out, width=40,
                  notes=[__doc__.split("\n\n", 2)[2]], load=os.getloadavg(),
                  argv=json.dumps(sys.argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main())
