"""Scale-out on PostgreSQL: throughput of 1, 2 and 4 worker processes on one server.

    .venv/bin/python -m bench.pg_scale --db postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/pg_scale.py --db ... [--workers 1,2,4] [--repeat 3] [--out FILE]

Each round, for each worker count (interleaved: 1, 2, 4, 1, 2, 4, ...): a fresh database, that
many worker processes (this script with ``--worker``: an ``Engine`` with the defaults,
``concurrency=100``), a warm-up batch, then one batch of 200 runs of a five-step workflow (trivial
async steps) started at once by a client process (``asyncio.gather`` of 200 ``engine.start``).
Time = the last run's end (the largest ``updated_at`` of the batch's rows) - just before the
first start; throughput = 1,000 steps / time. The client waits by polling a count every 20 ms.

CPU: the user+system time (``/proc``) consumed during the batch by the worker processes, by the
PostgreSQL server (the postmaster's children: backends, WAL writer, ...) and by the client,
and the whole machine's busy time (``/proc/stat``; other jobs on the machine included). Steps per
CPU-second = 1,000 / (workers + server CPU seconds): the per-core figure. Transactions per step:
``pg_stat_database.xact_commit`` of the benchmark's database over the batch (every statement
outside a transaction is one, reads included: claims, next-wake reads, the client's polls and
heartbeats as well as the journal writes), read 1.2 s after the batch and after the warm-up
(backends report their counts at most once a second).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for python -m bench.pg_scale

from _common import Databases, child_cmd, report, stat

from perdure import Engine, step, workflow

RUNS, STEPS = 200, 5
TICK = os.sysconf("SC_CLK_TCK")


@step
async def s(i: int) -> int:
    return i + 1


@workflow
async def wf5(i: int) -> int:
    for k in range(STEPS):
        i = await s(i + k)
    return i


WORKFLOWS = [wf5]


async def worker_main(url: str) -> None:
    async with Engine(url, workflows=WORKFLOWS):
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def children(ppid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == ppid:
                out.append(int(entry.name))
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


async def server_pids(conn: Any) -> list[int]:
    data = await conn.fetchval("SHOW data_directory")
    try:
        postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
    except OSError:  # not readable by us (another user's server): the server is not counted
        return []
    return [postmaster, *children(postmaster)]


async def batch(url: str, n_workers: int) -> dict[str, float]:
    import asyncpg

    procs = [subprocess.Popen(child_cmd("pg_scale.py", "--worker", "--db", url),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for _ in range(n_workers)]
    conn = await asyncpg.connect(url)
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != b"ready":
                raise RuntimeError("a worker failed to start")
        async with Engine(url, workflows=WORKFLOWS, worker=False) as client:
            async def run_batch(tag: str) -> tuple[float, float]:
                t0 = time.time()
                await asyncio.gather(*(client.start(wf5, i, id=f"{tag}-{i}")
                                       for i in range(RUNS)))
                while await conn.fetchval(
                        "SELECT count(*) FROM perdure_runs WHERE id LIKE $1 "
                        "AND status = 'completed'", f"{tag}-%") < RUNS:
                    await asyncio.sleep(0.02)
                end = await conn.fetchval("SELECT max(updated_at) FROM perdure_runs "
                                          "WHERE id LIKE $1", f"{tag}-%")
                return t0, float(end)

            async def xacts() -> int:
                # Backends report their counts at most once a second when idle: wait for it.
                await asyncio.sleep(1.2)
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                return int(await conn.fetchval(
                    "SELECT xact_commit FROM pg_stat_database "
                    "WHERE datname = current_database()"))

            await run_batch("warm")
            xacts_before = await xacts()
            server = await server_pids(conn)
            pids = [p.pid for p in procs]
            before = ([cpu_seconds(p) for p in pids], [cpu_seconds(p) for p in server],
                      cpu_seconds(os.getpid()), machine_busy())
            t0, end = await run_batch("b")
            after = ([cpu_seconds(p) for p in pids], [cpu_seconds(p) for p in server],
                     cpu_seconds(os.getpid()), machine_busy())
            n_xacts = await xacts() - xacts_before
    finally:
        await conn.close()
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    seconds = end - t0
    workers_cpu = sum(after[0]) - sum(before[0])
    server_cpu = sum(after[1]) - sum(before[1])
    busy = (after[3][0] - before[3][0]) / max(after[3][1] - before[3][1], 1)
    return {"seconds": seconds, "steps_per_s": RUNS * STEPS / seconds,
            "workers_cpu_s": workers_cpu, "server_cpu_s": server_cpu,
            "client_cpu_s": after[2] - before[2], "machine_busy": busy,
            "steps_per_cpu_s": RUNS * STEPS / max(workers_cpu + server_cpu, 1e-9),
            "xacts_per_step": n_xacts / (RUNS * STEPS)}


async def amain(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    dbs = Databases(args.db, Path(__file__).resolve().parent)
    res: dict[str, list[float]] = {}
    counts = [int(x) for x in args.workers.split(",")]
    for r in range(args.repeat):
        for n in counts:
            url = await dbs.fresh("scale")
            try:
                one = await batch(url, n)
            finally:
                await dbs.drop(url)
            for k, v in one.items():
                res.setdefault(f"w{n}_{k}", []).append(v)
            print(f"[round {r + 1}] {n} worker(s): {one['steps_per_s']:.0f} steps/s, "
                  f"CPU workers {one['workers_cpu_s']:.2f} s server {one['server_cpu_s']:.2f} s "
                  f"client {one['client_cpu_s']:.2f} s, machine busy {one['machine_busy']:.0%}, "
                  f"{one['xacts_per_step']:.2f} transactions/step",
                  file=sys.stderr, flush=True)
    units = {"seconds": "s", "steps_per_s": "steps/s", "workers_cpu_s": "CPU s",
             "server_cpu_s": "CPU s", "client_cpu_s": "CPU s", "machine_busy": "fraction",
             "steps_per_cpu_s": "steps/CPU s", "xacts_per_step": "transactions"}
    return {k: stat(v, units[k.split("_", 1)[1]]) for k, v in res.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a PostgreSQL admin URL")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--dir", type=Path, help="(ignored; accepted like the other scripts)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        asyncio.run(worker_main(args.db))
        return 0
    started = time.perf_counter()
    workloads = asyncio.run(amain(args))
    return report(args.db, workloads, started, args.out, width=24, digits=2,
                  notes=[__doc__.split("\n\n", 2)[2]], cores=os.cpu_count(),
                  load=os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
