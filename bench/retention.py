"""Claim latency while retention prunes a big backlog of finished runs.

    .venv/bin/python bench/retention.py --db sqlite --rows 1000000 --out r.json
    .venv/bin/python bench/retention.py --db postgresql://postgres@127.0.0.1:5432/postgres

On a fresh database (SQLite at synchronous=FULL, or a new PostgreSQL database), ``--rows``
*completed* runs 60 days old are bulk-loaded with SQL, each with ``--entries`` (3) journal
entries and one tag (a recursive CTE on SQLite, ``generate_series`` on PostgreSQL, then a WAL
checkpoint / ``VACUUM (ANALYZE)``). Then, in one worker process:

1. **baseline**: ``Engine(url, workflows=...)`` (no retention) times ``--samples`` claim
   statements when nothing is due (what every claim-loop cycle runs, ``store.claim``), one
   every ``--interval`` (5 ms: a busy worker's claim rate; back to back, an inline SQLite
   claim never yields the event loop and would starve everything else), and ``--probes``
   start -> first step latencies;
2. **pruning**: the same engine built with ``retention=timedelta(days=30)``: its background
   pruner (the shipped one: batches of 200 runs, one transaction each, a 10 ms pause between
   batches) deletes the backlog while the bench keeps timing a claim statement every
   ``--interval`` and a start -> first step probe every 0.5 s, until every old run is gone;
3. **after**: the same as the baseline, in the same engine, the backlog gone.

Reported: claim p50 / p99 / p99.9 / max for both phases, probe p50 / max, and the pruning
rate (runs and rows per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import _app
from _agent import probe
from _common import Databases, Sql, is_pg, pct

import perdure
from perdure import Engine

DAY = 86400.0

SQLITE_RUNS = """
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :rows)
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, output, epoch,
                          created_at, updated_at, tags)
SELECT 'old-' || x, 'wf_mark', '1', 'wf_mark' || char(31) || '1', 'completed',
       '{"i":1}', '2', 1, :old - x * 0.001, :old - x * 0.001 + 1, '{"customer":"c"}'
FROM c
"""
SQLITE_JOURNAL = """
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :rows),
     s(seq) AS (SELECT 0 UNION ALL SELECT seq + 1 FROM s WHERE seq + 1 < :entries)
INSERT INTO perdure_journal (run_id, seq, kind, name, status, attempts, output, finished_at)
SELECT 'old-' || x, seq, 'step', 'mark_step', 'completed', 1, '2', :old FROM c, s
"""
SQLITE_TAGS = """
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :rows)
INSERT INTO perdure_tags (run_id, key, value, created_at)
SELECT 'old-' || x, 'customer', 'c-' || (x % 1000), :old - x * 0.001 FROM c
"""
PG_RUNS = """
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, output, epoch,
                          created_at, updated_at, tags)
SELECT 'old-' || x, 'wf_mark', '1', 'wf_mark' || chr(31) || '1', 'completed',
       '{"i":1}', '2', 1, $2 - x * 0.001, $2 - x * 0.001 + 1, '{"customer":"c"}'
FROM generate_series(1, $1::int) AS x
"""
PG_JOURNAL = """
INSERT INTO perdure_journal (run_id, seq, kind, name, status, attempts, output, finished_at)
SELECT 'old-' || x, seq, 'step', 'mark_step', 'completed', 1, '2', $2
FROM generate_series(1, $1::int) AS x, generate_series(0, $3::int - 1) AS seq
"""
PG_TAGS = """
INSERT INTO perdure_tags (run_id, key, value, created_at)
SELECT 'old-' || x, 'customer', 'c-' || (x % 1000), $2 - x * 0.001
FROM generate_series(1, $1::int) AS x
"""


async def fill(url: str, rows: int, entries: int) -> float:
    sql = await Sql(url).open()
    old = time.time() - 60 * DAY
    t0 = time.perf_counter()
    try:
        if sql.pg:
            for text, args in ((PG_RUNS, (rows, old)), (PG_JOURNAL, (rows, old, entries)),
                               (PG_TAGS, (rows, old))):
                await sql._pg.execute(text, *args)
            await sql.execute("VACUUM (ANALYZE)")
        else:
            lite = sql._lite
            assert lite is not None
            params = {"rows": rows, "old": old, "entries": entries}
            lite.execute("BEGIN")
            for text in (SQLITE_RUNS, SQLITE_JOURNAL, SQLITE_TAGS):
                lite.execute(text, params)
            lite.execute("COMMIT")
            # No ANALYZE: most SQLite files never have statistics (and with a table that is
            # all one status, they would steer the claim's lapsed-lease branch to a scan).
            lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await sql.close()
    return time.perf_counter() - t0


async def claim_once(engine: Engine) -> float:
    worker = engine._worker  # private: bench introspection
    assert worker is not None
    now = engine.clock.time()
    t0 = time.perf_counter()
    got = await engine.store.claim(worker=engine.worker_id, keys=worker.keys, limit=64,
                                   now=now, lease_until=now + engine.lease)
    assert not got, "nothing should be due"
    return (time.perf_counter() - t0) * 1e3


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99), "p999": pct(xs, 99.9),
            "max": max(xs)}


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases(args.db, args.dir)
    url = await dbs.fresh("retention")
    res: dict[str, Any] = {"rows": args.rows, "entries": args.entries}
    try:
        async with Engine(url, worker=False):
            pass  # the schema
        res["fill_seconds"] = await fill(url, args.rows, args.entries)
        print(f"filled {args.rows} runs ({args.entries} journal entries and a tag each) in "
              f"{res['fill_seconds']:.1f} s", file=sys.stderr, flush=True)

        async with Engine(url, workflows=_app.WORKFLOWS) as engine:
            await probe(engine, 10)  # warm-up
            claims = []
            for _ in range(args.samples):
                claims.append(await claim_once(engine))
                await asyncio.sleep(args.interval)
            probes = await probe(engine, args.probes)
        res["baseline"] = {"claim_ms": summary(claims), "probe_ms": summary(probes)}
        print(f"baseline: {res['baseline']}", file=sys.stderr, flush=True)

        async with Engine(url, workflows=_app.WORKFLOWS,
                          retention=timedelta(days=30)) as engine:
            pruner = engine._pruner  # private: bench introspection
            assert pruner is not None
            claims, probes = [], []
            t0 = time.perf_counter()
            next_probe = t0
            while pruner.pruned < args.rows:
                claims.append(await claim_once(engine))
                await asyncio.sleep(args.interval)
                if time.perf_counter() >= next_probe:
                    probes += await probe(engine, 1)
                    next_probe = time.perf_counter() + 0.5
                if time.perf_counter() - t0 > args.max_seconds:
                    break
            seconds = time.perf_counter() - t0
            pruned = pruner.pruned
            # After: the same engine, the backlog gone (the pruner idles until its next pass).
            after = []
            for _ in range(args.samples):
                after.append(await claim_once(engine))
                await asyncio.sleep(args.interval)
            after_probes = await probe(engine, args.probes)
        res["pruning"] = {"claim_ms": summary(claims), "probe_ms": summary(probes),
                          "pruned": pruned, "seconds": seconds,
                          "runs_per_second": pruned / seconds,
                          "rows_per_second": pruned * (args.entries + 2) / seconds}
        res["after"] = {"claim_ms": summary(after), "probe_ms": summary(after_probes)}
        print(f"pruning: {res['pruning']}", file=sys.stderr, flush=True)
    finally:
        await dbs.drop(url)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--entries", type=int, default=3, help="journal entries per run")
    ap.add_argument("--samples", type=int, default=2000, help="baseline claim statements")
    ap.add_argument("--probes", type=int, default=50, help="baseline start -> first step")
    ap.add_argument("--interval", type=float, default=0.005, help="seconds between claims")
    ap.add_argument("--max-seconds", type=float, default=900.0)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    raw = asyncio.run(amain(args))
    report = {"engine": "perdure", "version": perdure.__version__,
              "backend": "postgresql" if is_pg(args.db) else "sqlite",
              "python": platform.python_version(), **raw,
              "wall_seconds": time.perf_counter() - t0}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    for phase in ("baseline", "pruning", "after"):
        c, p = raw[phase]["claim_ms"], raw[phase]["probe_ms"]
        print(f"  {phase:9s} claim p50 {c['p50']:.3f} p99 {c['p99']:.3f} p99.9 "
              f"{c['p999']:.3f} max {c['max']:.3f} ms (n={c['n']}); start->first step p50 "
              f"{p['p50']:.2f} max {p['max']:.2f} ms")
    pr = raw["pruning"]
    print(f"  pruned {pr['pruned']} runs in {pr['seconds']:.1f} s: "
          f"{pr['runs_per_second']:.0f} runs/s, {pr['rows_per_second']:.0f} rows/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
