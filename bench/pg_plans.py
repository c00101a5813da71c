"""Which of the PostgreSQL adapter's statements run on a cached generic plan, and which are
planned again on every call.

    .venv/bin/python -m bench.pg_plans --db postgresql://postgres@127.0.0.1:5432/postgres

asyncpg prepares every statement once per connection (its statement cache: a named server-side
prepared statement), and the server's plan cache decides on each execution: the first five use
a custom plan (planned for the values bound), after that the generic plan is reused unless its
estimated cost is higher than the custom plans' average (then every call is planned again).
This runs a workload on a fresh database with one in-process engine (300 five-step runs 100 at
a time, then 60 one after another, so the lone-write path runs too) and prints, summed over the
pool's connections, ``generic_plans`` and ``custom_plans`` of ``pg_prepared_statements`` for
each statement: a statement whose custom count keeps growing past 5 per connection is
re-planned on every call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for python -m bench.pg_plans

from _common import Databases

from perdure import Engine, step, workflow


@step
async def s(i: int) -> int:
    return i + 1


@workflow
async def wf5(i: int) -> int:
    for _ in range(5):
        i = await s(i)
    return i


async def measure(admin: str) -> list[dict[str, object]]:
    dbs = Databases(admin, Path(__file__).resolve().parent)
    url = await dbs.fresh("plans")
    try:
        async with Engine(url, workflows=[wf5]) as engine:
            for _ in range(3):
                handles = [await engine.start(wf5, i) for i in range(100)]
                for h in handles:
                    await h.result()
            for i in range(60):
                await (await engine.start(wf5, i)).result()
            pool = engine.store._pool  # type: ignore[attr-defined]  # bench introspection
            conns = [await pool.acquire() for _ in range(len(pool._idle))]  # taken from it
            totals: dict[str, list[int]] = {}
            try:
                for conn in conns:
                    for r in await conn.fetch(
                            "SELECT regexp_replace(statement, '\\s+', ' ', 'g') AS s, "
                            "generic_plans, custom_plans FROM pg_prepared_statements"):
                        t = totals.setdefault(r["s"].strip()[:100], [0, 0])
                        t[0] += r["generic_plans"]
                        t[1] += r["custom_plans"]
            finally:
                for conn in conns:
                    pool.release(conn)
            return [{"statement": k, "generic": g, "custom": c, "connections": len(conns)}
                    for k, (g, c) in sorted(totals.items(), key=lambda kv: -sum(kv[1]))]
    finally:
        await dbs.drop(url)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a PostgreSQL admin URL")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rows = asyncio.run(measure(args.db))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    for r in rows:
        print(f"generic {r['generic']:6d}  custom {r['custom']:6d}  {r['statement']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
