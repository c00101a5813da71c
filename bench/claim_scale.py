"""Claim latency with a big runs table: 1,000,000 finished runs bulk-loaded with SQL.

    .venv/bin/python bench/claim_scale.py --db sqlite --out c.json
    .venv/bin/python bench/claim_scale.py --db postgresql://postgres@127.0.0.1:5432/postgres

On a fresh database (SQLite at synchronous=FULL, or a new PostgreSQL database): an in-process
``Engine`` (worker + client, defaults) measures, with the runs table empty,

* start -> first step: ``perf_counter`` before ``engine.start(wf_mark, i)`` -> first line of
  the step body, sequential samples;
* the claim statement: ``store.claim(...)`` for this worker's workflows when nothing is due
  (what every claim-loop cycle runs), and the ``next_wake`` read;

then closes the engine, bulk-inserts ``--rows`` (1,000,000) *completed* runs of the same
workflow straight into the runs table with one ``INSERT ... SELECT`` (a recursive CTE on SQLite,
``generate_series`` on PostgreSQL, followed there by ``VACUUM (ANALYZE)`` as autovacuum would
soon do; on SQLite by a WAL checkpoint), reopens the engine and measures again. Each phase:
``--blocks`` (3) blocks of 100 samples; reported as the median over blocks of each block's
p50 / p99, with the range. The claim statement's query plan is recorded (EXPLAIN QUERY PLAN /
EXPLAIN ANALYZE).
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
from _agent import claim_times, probe
from _common import Databases, Sql, is_pg, pct, stat

import perdure
from perdure import Engine

SQLITE_FILL = """
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, output, epoch, owner,
                          created_at, updated_at)
SELECT 'done-' || x, 'wf_mark', '1', 'wf_mark' || char(31) || '1', 'completed',
       '{"args": [1], "kwargs": {}}', '2', 1, NULL, ? - x * 2.5, ? - x * 2.5 + 0.01
FROM c
"""
PG_FILL = """
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, output, epoch, owner,
                          created_at, updated_at)
SELECT 'done-' || x, 'wf_mark', '1', 'wf_mark' || chr(31) || '1', 'completed',
       '{"args": [1], "kwargs": {}}', '2', 1, NULL, $2 - x * 2.5, $2 - x * 2.5 + 0.01
FROM generate_series(1, $1) AS x
"""


async def phase(url: str, blocks: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"sfs_p50": [], "sfs_p99": [], "claim_p50": [],
                                   "claim_p99": [], "wake_p50": []}
    async with Engine(url, workflows=_app.WORKFLOWS) as engine:
        await probe(engine, 20)  # warm-up
        for _ in range(blocks):
            xs = await probe(engine, 100)
            c = await claim_times(engine, 100)
            out["sfs_p50"].append(pct(xs, 50))
            out["sfs_p99"].append(pct(xs, 99))
            out["claim_p50"].append(pct(c["claim_ms"], 50))
            out["claim_p99"].append(pct(c["claim_ms"], 99))
            out["wake_p50"].append(pct(c["next_wake_ms"], 50))
    return out


async def plan(url: str, sql: Sql) -> list[str]:
    """The query plan of the claim statement (its SELECT part) for this worker's keys."""
    now = time.time()
    if sql.pg:
        text = """EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)
        SELECT id FROM perdure_runs
        WHERE status IN ('pending', 'waiting') AND wake_at IS NOT NULL AND wake_at <= $1
          AND wf_key = ANY($2::text[]) ORDER BY wake_at LIMIT 64"""
        keys = [f"{w.name}\x1f{w.version}" for w in _app.WORKFLOWS]
        return [r[0] for r in await sql.rows(text, now, keys)]
    text = """EXPLAIN QUERY PLAN SELECT id FROM perdure_runs
        WHERE status IN ('pending', 'waiting') AND wake_at <= ?
          AND wf_key IN (SELECT value FROM json_each(?))
        UNION ALL SELECT id FROM perdure_runs
        WHERE status = 'running' AND lease_until < ?
          AND wf_key IN (SELECT value FROM json_each(?)) LIMIT 64"""
    keys = json.dumps([f"{w.name}\x1f{w.version}" for w in _app.WORKFLOWS])
    return [str(r[-1]) for r in await sql.rows(text, now, keys, now, keys)]


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases(args.db, args.dir)
    url = await dbs.fresh("scale")
    res: dict[str, Any] = {}
    try:
        res["empty"] = await phase(url, args.blocks)
        print(f"empty: {res['empty']}", file=sys.stderr, flush=True)
        sql = await Sql(url).open()
        try:
            t0 = time.perf_counter()
            if sql.pg:
                await sql._pg.execute(PG_FILL, args.rows, time.time())
                # What autovacuum would soon do after a million inserts; done here so that it
                # does not run in the middle of the measurement.
                await sql.execute("VACUUM (ANALYZE) perdure_runs")
            else:
                assert sql._lite is not None
                sql._lite.execute("BEGIN")
                sql._lite.execute(SQLITE_FILL, (args.rows, time.time(), time.time()))
                sql._lite.execute("COMMIT")
                # Fold the big WAL into the database now, not in the engine's first commit.
                sql._lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            res["fill_seconds"] = time.perf_counter() - t0
            res["rows"] = await sql.val("SELECT count(*) FROM perdure_runs")
            res["plan_full"] = await plan(url, sql)
            print(f"filled {res['rows']} rows in {res['fill_seconds']:.1f} s; plan "
                  f"{res['plan_full']}", file=sys.stderr, flush=True)
        finally:
            await sql.close()
        res["full"] = await phase(url, args.blocks)
        print(f"full: {res['full']}", file=sys.stderr, flush=True)
    finally:
        await dbs.drop(url)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    raw = asyncio.run(amain(args))
    workloads: dict[str, Any] = {}
    for ph in ("empty", "full"):
        for key, unit in (("sfs_p50", "ms (start -> first step, p50 of 100)"),
                          ("sfs_p99", "ms (start -> first step, p99 of 100)"),
                          ("claim_p50", "ms (claim statement, p50 of 100)"),
                          ("claim_p99", "ms (claim statement, p99 of 100)"),
                          ("wake_p50", "ms (next_wake read, p50 of 100)")):
            workloads[f"{ph}_{key}"] = stat(raw[ph][key], unit)
    report = {
        "engine": "perdure", "version": perdure.__version__,
        "backend": "postgresql" if is_pg(args.db) else "sqlite",
        "python": platform.python_version(), "rows": raw.get("rows"),
        "fill_seconds": raw.get("fill_seconds"), "plan": raw.get("plan_full"),
        "workloads": workloads, "wall_seconds": time.perf_counter() - t0,
        "notes": ["SQLite at synchronous=FULL (the default)."],
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    for k, v in workloads.items():
        print(f"  {k:18s} median {v['median']:8.3f} [{v['min']:.3f} .. {v['max']:.3f}] "
              f"{v['unit']}")
    print(f"  rows {raw.get('rows')}, fill {raw.get('fill_seconds', 0):.1f} s, "
          f"median of medians {statistics.median(raw['full']['sfs_p50']):.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
