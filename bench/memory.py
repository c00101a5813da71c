"""Worker memory with many parked runs, and claim latency while they sit there.

    .venv/bin/python bench/memory.py --db sqlite --out m.json
    .venv/bin/python bench/memory.py --db postgresql://postgres@127.0.0.1:5432/postgres

One worker process (``_agent.py``, engine defaults) on a fresh database (SQLite at
synchronous=FULL, or a new PostgreSQL database). This process is a client (``Engine(...,
worker=False)``) that starts runs of ``_app.sleeper`` (``await perdure.sleep(timedelta(days=1))``)
in concurrent batches of 1,000 starts; the worker claims each one, journals its timer and parks
it (status ``waiting``, no coroutine). At 0, 10,000 and 100,000 parked runs (``--steps``) the
worker reports, from inside its own process:

* VmRSS and VmHWM (peak) from ``/proc/self/status`` (no forced GC);
* how many runs it drives in memory right now (0 once all are parked);
* start -> first step latency of 50 new runs started in the worker process itself (the claim
  path with the parked rows in the table);
* the time of 100 claim statements (``store.claim``, nothing due) and ``next_wake`` reads;

and on PostgreSQL once more after ``VACUUM (ANALYZE)`` of the runs table (each parked run leaves
dead row versions in the claim's partial indexes until a vacuum).

For comparison (``--held N``, default 10,000; 0 to skip): a second worker on another fresh
database with ``park_after`` of two days and ``concurrency=N``, so the same sleeps are *held in
memory* as coroutines instead of parked, and the same process also creates N bare
``asyncio.sleep`` tasks: what the rows-not-coroutines design saves.
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

import _app
from _common import Agent, Databases, Sql, is_pg, pct

import perdure
from perdure import Engine


async def start_sleepers(url: str, lo: int, hi: int) -> float:
    t0 = time.perf_counter()
    async with Engine(url, workflows=_app.WORKFLOWS, worker=False) as client:
        for a in range(lo, hi, 1000):
            await asyncio.gather(*(client.start(_app.sleeper, i, id=f"sleep-{i}")
                                   for i in range(a, min(hi, a + 1000))))
    return time.perf_counter() - t0


async def snapshot(agent: Agent, label: str, parked: int) -> dict[str, Any]:
    rss = await agent.ask({"cmd": "rss"})
    active = (await agent.ask({"cmd": "active"}))["n"]
    probe = (await agent.ask({"cmd": "probe", "n": 50}))["ms"]
    claim = await agent.ask({"cmd": "claim", "n": 100})
    row = {
        "label": label, "parked": parked, "rss_kb": rss["rss_kb"], "hwm_kb": rss["hwm_kb"],
        "active": active,
        "start_first_step_p50_ms": pct(probe, 50), "start_first_step_p99_ms": pct(probe, 99),
        "claim_p50_ms": pct(claim["claim_ms"], 50), "claim_p99_ms": pct(claim["claim_ms"], 99),
        "next_wake_p50_ms": pct(claim["next_wake_ms"], 50),
    }
    print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "label"),
          file=sys.stderr, flush=True)
    return row


async def parked_series(dbs: Databases, steps: list[int]) -> dict[str, Any]:
    url = await dbs.fresh("mem")
    agent = Agent(url)
    sql = await Sql(url).open()
    rows: list[dict[str, Any]] = []
    fill: list[dict[str, float]] = []
    try:
        ready = await agent.start()
        rows.append({"label": "just opened", "parked": 0, "rss_kb": ready["rss_kb"],
                     "hwm_kb": ready["hwm_kb"]})
        rows.append(await snapshot(agent, "0 parked (after 50 probe runs)", 0))
        have = 0
        for target in steps:
            if target <= have:
                continue
            t0 = time.perf_counter()
            started = await start_sleepers(url, have, target)
            await sql.wait_for("SELECT count(*) FROM perdure_runs WHERE status = 'waiting'",
                               lambda v, t=target: v == t, timeout=900, every=0.25,
                               what=f"{target} parked runs")
            fill.append({"from": have, "to": target, "start_seconds": started,
                         "parked_seconds": time.perf_counter() - t0})
            have = target
            rows.append(await snapshot(agent, f"{target:,} parked", target))
        if dbs.pg and have:
            # Each parked run left dead versions of its row (pending, running) in the
            # partial indexes the claim and next_wake read, until VACUUM removes them;
            # autovacuum does so soon after. The same measurement after a VACUUM:
            await sql.execute("VACUUM (ANALYZE) perdure_runs")
            rows.append(await snapshot(agent, f"{have:,} parked, after VACUUM", have))
        size = None
        if not dbs.pg:
            size = Path(url.removeprefix("sqlite:///")).stat().st_size
        else:
            size = await sql.val("SELECT pg_database_size(current_database())")
    finally:
        await sql.close()
        await agent.quit()
        await dbs.drop(url)
    return {"rows": rows, "fill": fill, "db_bytes": size}


async def held_series(dbs: Databases, n: int) -> dict[str, Any]:
    url = await dbs.fresh("held")
    agent = Agent(url, concurrency=n + 100, park_after=172800.0)
    try:
        ready = await agent.start()
        base = await agent.ask({"cmd": "rss"})
        await start_sleepers(url, 0, n)
        deadline = time.monotonic() + 600
        while (await agent.ask({"cmd": "active"}))["n"] < n:
            if time.monotonic() > deadline:
                raise TimeoutError("runs not all held in memory")
            await asyncio.sleep(0.25)
        held = await agent.ask({"cmd": "rss"})
        tasks = await agent.ask({"cmd": "tasks", "n": n})
        out = {"opened_rss_kb": ready["rss_kb"], "base_rss_kb": base["rss_kb"],
               "held_rss_kb": held["rss_kb"], "held_hwm_kb": held["hwm_kb"],
               "plus_tasks_rss_kb": tasks["rss_kb"], "n": n}
        print(f"  held in memory: {out}", file=sys.stderr, flush=True)
        return out
    finally:
        await agent.quit()
        await dbs.drop(url)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases(args.db, args.dir)
    steps = [int(x) for x in args.steps.split(",") if x]
    out: dict[str, Any] = {"series": []}
    for r in range(args.repeat):
        print(f"[repeat {r + 1}/{args.repeat}] parked series {steps}", file=sys.stderr,
              flush=True)
        out["series"].append(await parked_series(dbs, steps))
        if args.held:
            out.setdefault("held", []).append(await held_series(dbs, args.held))
    return out


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians over repeats of each row of the series (and of the held comparison)."""
    series = raw["series"]
    rows = []
    for i, first in enumerate(series[0]["rows"]):
        row: dict[str, Any] = {"label": first["label"], "parked": first["parked"]}
        for k, v in first.items():
            if isinstance(v, int | float) and k != "parked":
                xs = [s["rows"][i][k] for s in series]
                row[k] = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
        rows.append(row)
    out: dict[str, Any] = {"rows": rows, "fill": [s["fill"] for s in series],
                           "db_bytes": [s["db_bytes"] for s in series]}
    if raw.get("held"):
        held = raw["held"]
        out["held"] = {k: statistics.median(h[k] for h in held) for k in held[0]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL")
    ap.add_argument("--steps", default="10000,100000")
    ap.add_argument("--held", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    raw = asyncio.run(amain(args))
    report = {
        "engine": "perdure", "version": perdure.__version__,
        "backend": "postgresql" if is_pg(args.db) else "sqlite",
        "python": platform.python_version(), "repeat": args.repeat, "steps": args.steps,
        "summary": summarize(raw), "raw": raw, "wall_seconds": time.perf_counter() - t0,
        "notes": ["SQLite at synchronous=FULL (the default); engine defaults otherwise."],
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
