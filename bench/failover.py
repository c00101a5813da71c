"""Failover time on Perdure: SIGKILL a worker holding 100 runs mid-step; how long until the other
worker has claimed them all.

    .venv/bin/python bench/failover.py --db sqlite --out f.json
    .venv/bin/python bench/failover.py --db postgresql://postgres@127.0.0.1:5432/postgres

Each repeat: a fresh database (SQLite file at synchronous=FULL, or a new PostgreSQL database);
worker process A (``_agent.py``, engine defaults: ``concurrency=100``, ``lease=10``) starts; this
process starts 100 runs of ``_app.holder`` (one step that takes an hour) through a client engine
(``worker=False``) and waits until A owns all 100 with their steps executing; worker process B
starts. Then A gets SIGKILL (and is reaped at once), and the runs table's ``owner`` column is
polled every 2 ms until B owns all 100 runs: failover time = kill -> that moment. Also
reported: kill -> B owns the first run. Both workers run on this host: on SQLite B sees A's
pid is gone; on PostgreSQL A's session advisory lock is released when its connection drops.
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
from _common import Agent, Databases, Sql, report, stat

from perdure import Engine


async def once(url: str, n: int) -> dict[str, float]:
    a = Agent(url)
    b = Agent(url)
    sql = await Sql(url).open()
    try:
        ra = await a.start()
        async with Engine(url, workflows=_app.WORKFLOWS, worker=False) as client:
            await asyncio.gather(*(client.start(_app.holder, i, id=f"hold-{i}")
                                   for i in range(n)))
        await sql.wait_for(
            f"SELECT count(*) FROM perdure_runs WHERE status = 'running' "
            f"AND owner = '{ra['worker']}'", lambda v: v == n, timeout=60,
            what=f"worker A owning {n} runs")
        rb = await b.start()
        # A's steps are mid-flight; B has registered and is idle. A random wait, so that the
        # kill does not lock in phase with B's periodic checks.
        await asyncio.sleep(random.uniform(0.5, 1.0))
        own_b = f"SELECT count(*) FROM perdure_runs WHERE owner = '{rb['worker']}'"
        assert await sql.val(own_b) == 0
        t0 = time.perf_counter()
        a.kill()
        await a.reap()
        first = None
        while True:
            got = await sql.val(own_b)
            now = time.perf_counter()
            if got and first is None:
                first = now - t0
            if got == n:
                break
            if now - t0 > 60:
                raise TimeoutError(f"B owns {got}/{n} runs 60 s after the kill")
            await asyncio.sleep(0.002)
        return {"all_s": now - t0, "first_s": first or 0.0}
    finally:
        await sql.close()
        await b.quit()
        if a.proc is not None and a.proc.returncode is None:
            a.kill()
            await a.reap()


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases(args.db, args.dir)
    res: list[dict[str, float]] = []
    for r in range(args.repeat):
        url = await dbs.fresh("failover")
        try:
            x = await once(url, args.runs)
        finally:
            await dbs.drop(url)
        res.append(x)
        print(f"[repeat {r + 1}/{args.repeat}] all {x['all_s'] * 1e3:.0f} ms, first "
              f"{x['first_s'] * 1e3:.0f} ms", file=sys.stderr, flush=True)
    return {
        "failover_all": stat([x["all_s"] * 1e3 for x in res], f"ms (kill -> B owns all "
                             f"{args.runs})"),
        "failover_first": stat([x["first_s"] * 1e3 for x in res], "ms (kill -> B owns one)"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    workloads = asyncio.run(amain(args))
    return report(args.db, workloads, t0, args.out, notes=[], repeat=args.repeat,
                  runs=args.runs)


if __name__ == "__main__":
    raise SystemExit(main())
