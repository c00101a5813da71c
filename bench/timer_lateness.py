"""Durable timer lateness on Perdure (SQLite or PostgreSQL): N runs sleeping until one second.

    .venv/bin/python bench/timer_lateness.py --db sqlite --out t.json
    .venv/bin/python bench/timer_lateness.py --db postgresql://postgres@127.0.0.1:5432/postgres

Each measurement: a fresh database, one in-process ``Engine`` (worker and client), ``N`` runs of
``_app.alarm(due_i)`` started at once (``engine.start`` in concurrent chunks of 500), where
``due_i = T0 + i * spread / N``: every run's timer falls due within ``--spread`` seconds
(default 1: the same second), ``T0`` being
``--lead`` seconds (default 5) after the first start. ``alarm`` does ``await
perdure.sleep_until(due)`` and then runs the step ``woke``, whose body returns ``time.time()``:
lateness = that - ``due_i``. Reported: p50 / p99 / max lateness, the lateness of the first run
due and of the last run to wake, the wake rate (runs woken per second between the first and the
last wake: 10,000 timers due within one second need 10,000/s to stay on time), how long the N
starts took, and how many runs had journaled their sleep 0.2 s before ``T0`` (all of them, when
the set-up finished in time). ``--lead`` defaults to 5 s on SQLite and 10 s on PostgreSQL,
whose starts and claims are slower (runs claimed more than ``park_after`` before their timer
park rather than wait in memory).

Configurations (``--configs``):

``small``    100 runs, engine defaults: timer accuracy when nothing else limits it.
``default``  N runs (10,000), engine defaults (``concurrency=100``, ``park_after=5``): a timer
             due within ``park_after`` waits in memory and holds one of the 100 slots, so most
             runs are claimed only as slots free up.
``wide``     N runs, ``concurrency=N``: every run is claimed at once and waits in memory.
``parked``   N runs, ``park_after=1``: every run parks (a row with ``wake_at``, no coroutine)
             ahead of its timer and is claimed back from the database when it falls due.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import _app
from _common import Databases, Sql, pct, report, stat

from perdure import Engine

CONFIGS: dict[str, dict[str, Any]] = {
    "small": {"runs": 100},
    "default": {},
    "wide": {"concurrency": "N"},
    "parked": {"park_after": 1.0},
}


async def measure(url: str, n: int, lead: float, concurrency: int,
                  park_after: float, spread: float = 1.0) -> dict[str, Any]:
    sql = await Sql(url).open()
    try:
        async with Engine(url, workflows=_app.WORKFLOWS, concurrency=concurrency,
                          park_after=park_after) as engine:
            t_start = time.time()
            t0 = t_start + lead
            dues = [t0 + i * spread / n for i in range(n)]
            for lo in range(0, n, 500):
                await asyncio.gather(*(engine.start(_app.alarm, dues[i], id=f"alarm-{i}")
                                       for i in range(lo, min(n, lo + 500))))
            created = time.time() - t_start
            await asyncio.sleep(max(0.0, t0 - 0.2 - time.time()))
            ready = await sql.val("SELECT count(*) FROM perdure_journal WHERE kind = 'sleep'")
            await sql.wait_for("SELECT count(*) FROM perdure_runs WHERE status = 'completed'",
                               lambda v: v == n, timeout=lead + spread + 300, every=0.2,
                               what=f"{n} completed runs")
            rows = await sql.rows("SELECT id, output FROM perdure_runs")
    finally:
        await sql.close()
    woke = {int(rid.split("-")[1]): float(json.loads(out)) for rid, out in rows}
    late = [(woke[i] - dues[i]) * 1e3 for i in range(n)]
    order = sorted(range(n), key=lambda i: woke[i])
    first_wake, last_wake = woke[order[0]], woke[order[-1]]
    return {
        "p50_ms": pct(late, 50), "p99_ms": pct(late, 99), "max_ms": max(late),
        "first_due_ms": late[0], "last_woken_ms": late[order[-1]],
        "drain_runs_per_s": n / max(last_wake - first_wake, 1e-9),
        "start_seconds": created, "sleeping_at_t0": ready,
        "woken_before_due": sum(1 for x in late if x < 0),
    }


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases(args.db, args.dir)
    names = [c for c in args.configs.split(",") if c]
    lead = args.lead if args.lead is not None else (10.0 if dbs.pg else 5.0)
    raw: dict[str, list[dict[str, Any]]] = {c: [] for c in names}
    for r in range(args.repeat):
        for c in names:
            cfg = CONFIGS[c]
            n = cfg.get("runs", args.runs)
            conc = n if cfg.get("concurrency") == "N" else cfg.get("concurrency", 100)
            url = await dbs.fresh("timer")
            try:
                res = await measure(url, n, lead, conc, cfg.get("park_after", 5.0), args.spread)
            finally:
                await dbs.drop(url)
            raw[c].append(res)
            print(f"[repeat {r + 1}/{args.repeat}] {c} (n={n}): " + ", ".join(
                f"{k} {v:.1f}" for k, v in res.items()), file=sys.stderr, flush=True)
    out: dict[str, Any] = {}
    for c, reps in raw.items():
        if not reps:
            continue
        n = CONFIGS[c].get("runs", args.runs)
        for key, unit in (("p50_ms", "ms"), ("p99_ms", "ms"), ("max_ms", "ms"),
                          ("first_due_ms", "ms"), ("last_woken_ms", "ms"),
                          ("drain_runs_per_s", "runs/s"), ("start_seconds", "s"),
                          ("sleeping_at_t0", "runs"),
                          ("woken_before_due", "runs")):
            out[f"{c}_{key}"] = stat([x[key] for x in reps], unit, runs=n)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL")
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--lead", type=float, default=None,
                    help="seconds from the first start to the first timer (default: 5 on "
                         "SQLite, 10 on PostgreSQL)")
    ap.add_argument("--spread", type=float, default=1.0,
                    help="seconds over which the N timers fall due (default 1)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    workloads = asyncio.run(amain(args))
    return report(args.db, workloads, t0, args.out, width=28,
                  notes=["SQLite at synchronous=FULL (the default)."], repeat=args.repeat,
                  runs=args.runs, lead=args.lead)


if __name__ == "__main__":
    raise SystemExit(main())
