"""Dashboard page times over a database of 1,000,000 runs.

    .venv/bin/python bench/dashboard.py --db sqlite --out bench/results-dashboard-sqlite.json
    .venv/bin/python bench/dashboard.py --db postgresql://postgres@127.0.0.1:5432/postgres

A fresh database is bulk-loaded with SQL (a recursive CTE on SQLite, ``generate_series`` on
PostgreSQL; then a WAL checkpoint / ``VACUUM (ANALYZE)``): ``--rows`` runs created evenly over
the last 30 days, newest now, of five workflows — 96.6% completed, 2% failed, 1% cancelled,
0.5% waiting, 0.2% each pending and running, 0.1% paused and ten blocked runs (a rare
status, spread over the month) — each with a tag
(``customer=c-N``, 1,000 customers) and three journal entries (a step, a step that took two
attempts, a sleep); every hundredth run is the child of the run before it. Three live workers
serve four of the five workflows (the fifth's unfinished runs are stranded).

Then ``perdure dashboard`` is started as its own process over that database, and each page is
fetched over HTTP (httpx, keep-alive) ``--samples`` times after two warm-up fetches: the
overview (hour and day windows), the runs list unfiltered, its next page, filtered by a common
status, by a rare one, by a tag, by workflow and status, by a day of creation, a page deep in
the history, a run page (parent with a child, and a failed run), and a search by id. Reported:
p50, p95 and max milliseconds per page, from the request to the last byte.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from _common import Databases, Sql, is_pg, pct

import perdure
from perdure import Engine

DAY = 86400.0
SPAN = 30 * DAY

_STATUS = """CASE WHEN x % 100000 = 1 THEN 'blocked' WHEN x % 1000 = 2 THEN 'paused'
  WHEN x % 200 = 3 THEN 'waiting' WHEN x % 500 = 4 THEN 'pending'
  WHEN x % 500 = 5 THEN 'running' WHEN x % 50 = 6 THEN 'failed'
  WHEN x % 100 = 7 THEN 'cancelled' ELSE 'completed' END"""

SQLITE_RUNS = f"""
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :rows),
     r AS (SELECT x, {_STATUS} AS status, :now - (:rows - x) * :gap AS at FROM c)
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, output, error, epoch,
                          owner, lease_until, wake_at, parent_id, created_at, updated_at, tags)
SELECT printf('r-%07d', x), 'wf' || (x % 5), '1', 'wf' || (x % 5) || char(31) || '1', status,
       '{{"order":"o-' || x || '","cents":4200}}',
       CASE WHEN status = 'completed' THEN '"receipt-' || x || '"' END,
       CASE WHEN status IN ('failed', 'cancelled')
            THEN '{{"type":"ValueError","message":"boom","tb":"Traceback..."}}'
            WHEN status = 'blocked' THEN 'non-determinism at seq 1'
            WHEN status = 'waiting' THEN 'signal:approve' END,
       1, CASE WHEN status = 'running' THEN 'w-' || (x % 3) END,
       CASE WHEN status = 'running' THEN :now + 3600 END,
       CASE WHEN status IN ('waiting', 'pending') THEN :now + 86400 END,
       CASE WHEN x % 100 = 50 THEN printf('r-%07d', x - 1) END,
       at, at + 2, '{{"customer":"c-' || (x % 1000) || '"}}'
FROM r
"""
SQLITE_TAGS = """
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :rows)
INSERT INTO perdure_tags (run_id, key, value, created_at)
SELECT printf('r-%07d', x), 'customer', 'c-' || (x % 1000), :now - (:rows - x) * :gap FROM c
"""
SQLITE_JOURNAL = """
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :rows),
     s(seq) AS (SELECT 0 UNION ALL SELECT seq + 1 FROM s WHERE seq < 2)
INSERT INTO perdure_journal (run_id, seq, kind, name, status, attempts, output, due_at,
                             started_at, finished_at)
SELECT printf('r-%07d', x), seq, CASE seq WHEN 2 THEN 'sleep' ELSE 'step' END,
       CASE seq WHEN 0 THEN 'reserve' WHEN 1 THEN 'charge' ELSE 'sleep' END, 'completed',
       CASE seq WHEN 1 THEN 2 ELSE 1 END, '"ok"',
       CASE seq WHEN 2 THEN :now - (:rows - x) * :gap + 1.5 END,
       :now - (:rows - x) * :gap + seq * 0.5, :now - (:rows - x) * :gap + seq * 0.5 + 0.4
FROM c, s
"""

_PG_STATUS = _STATUS
PG_RUNS = f"""
INSERT INTO perdure_runs (id, workflow, version, wf_key, status, input, output, error, epoch,
                          owner, lease_until, wake_at, parent_id, created_at, updated_at, tags)
SELECT 'r-' || lpad(x::text, 7, '0'), 'wf' || (x % 5), '1', 'wf' || (x % 5) || chr(31) || '1',
       status, '{{"order":"o-' || x || '","cents":4200}}',
       CASE WHEN status = 'completed' THEN '"receipt-' || x || '"' END,
       CASE WHEN status IN ('failed', 'cancelled')
            THEN '{{"type":"ValueError","message":"boom","tb":"Traceback..."}}'
            WHEN status = 'blocked' THEN 'non-determinism at seq 1'
            WHEN status = 'waiting' THEN 'signal:approve' END,
       1, CASE WHEN status = 'running' THEN 'w-' || (x % 3) END,
       CASE WHEN status = 'running' THEN $2 + 3600 END,
       CASE WHEN status IN ('waiting', 'pending') THEN $2 + 86400 END,
       CASE WHEN x % 100 = 50 THEN 'r-' || lpad((x - 1)::text, 7, '0') END,
       at, at + 2, '{{"customer":"c-' || (x % 1000) || '"}}'
FROM (SELECT x, {_PG_STATUS} AS status, $2::float8 - ($1 - x) * $3::float8 AS at
      FROM generate_series(1, $1::int) AS x) AS r
"""
PG_TAGS = """
INSERT INTO perdure_tags (run_id, key, value, created_at)
SELECT 'r-' || lpad(x::text, 7, '0'), 'customer', 'c-' || (x % 1000),
       $2::float8 - ($1 - x) * $3::float8
FROM generate_series(1, $1::int) AS x
"""
PG_JOURNAL = """
INSERT INTO perdure_journal (run_id, seq, kind, name, status, attempts, output, due_at,
                             started_at, finished_at)
SELECT 'r-' || lpad(x::text, 7, '0'), seq, CASE seq WHEN 2 THEN 'sleep' ELSE 'step' END,
       CASE seq WHEN 0 THEN 'reserve' WHEN 1 THEN 'charge' ELSE 'sleep' END, 'completed',
       CASE seq WHEN 1 THEN 2 ELSE 1 END, '"ok"',
       CASE seq WHEN 2 THEN $2::float8 - ($1 - x) * $3::float8 + 1.5 END,
       $2::float8 - ($1 - x) * $3::float8 + seq * 0.5,
       $2::float8 - ($1 - x) * $3::float8 + seq * 0.5 + 0.4
FROM generate_series(1, $1::int) AS x, generate_series(0, 2) AS seq
"""
WORKERS = """
INSERT INTO perdure_workers (id, host, pid, pid_start, started_at, heartbeat_at, serves)
VALUES ('w-0', 'host-a', 101, NULL, ?, ?, ?), ('w-1', 'host-b', 102, NULL, ?, ?, ?),
       ('w-2', 'host-c', 103, NULL, ?, ?, ?)
"""


async def fill(url: str, rows: int, now: float) -> float:
    sql = await Sql(url).open()
    gap = SPAN / rows
    serves = ["wf0\x1f1", "wf1\x1f1", "wf2\x1f1", "wf3\x1f1"]
    t0 = time.perf_counter()
    try:
        if sql.pg:
            for text in (PG_RUNS, PG_TAGS, PG_JOURNAL):
                await sql._pg.execute(text, rows, now, gap)
            await sql.execute(WORKERS, *([now - 3600, now, serves] * 3))
            await sql.execute("VACUUM (ANALYZE)")
        else:
            lite = sql._lite
            assert lite is not None
            params = {"rows": rows, "now": now, "gap": gap}
            lite.execute("BEGIN")
            for text in (SQLITE_RUNS, SQLITE_TAGS, SQLITE_JOURNAL):
                lite.execute(text, params)
            lite.execute(WORKERS, [now - 3600, now, json.dumps(serves)] * 3)
            lite.execute("COMMIT")
            lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await sql.close()
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pages(rows: int, now: float, next_cursor: str) -> dict[str, str]:
    mid = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 15 * DAY))
    mid_end = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 14 * DAY))
    deep = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 29 * DAY))
    parent = f"r-{rows - 50 - 1:07d}" if rows > 200 else "r-0000049"
    failed = f"r-{(rows // 50) * 50 - 44:07d}"
    return {
        "overview (last hour)": "/",
        "overview (last day)": "/?window=day",
        "runs": "/runs",
        "runs, next page": f"/runs?cursor={quote(next_cursor)}",
        "runs, status=failed": "/runs?status=failed",
        "runs, status=blocked (10 runs)": "/runs?status=blocked",
        "runs, status=waiting": "/runs?status=waiting",
        "runs, tag customer=c-7": "/runs?tags=customer%3Dc-7",
        "runs, workflow wf3 completed": "/runs?workflow=wf3&status=completed",
        "runs, created that day": f"/runs?created_after={mid}&created_before={mid_end}",
        "runs, 29 days back": f"/runs?created_before={deep}",
        "a run with a child": f"/runs/{parent}",
        "a failed run": f"/runs/{failed}",
        "search by id": f"/runs?q={parent}",
    }


async def measure(url: str, rows: int, now: float, samples: int) -> dict[str, Any]:
    import httpx

    port = _free_port()
    env = {**os.environ, "PERDURE_DASHBOARD_TOKEN": "bench-token-0123456789abcdef"}
    proc = subprocess.Popen([sys.executable, "-m", "perdure", "dashboard", "--db", url,
                             "--port", str(port)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        print(proc.stdout.readline().decode().strip(), file=sys.stderr, flush=True)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(100):
                try:
                    await client.get("/static/dashboard.css")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            async with Engine(url, worker=False) as engine:
                page = await engine.list_runs(limit=50)
                assert page.next_cursor is not None
            out: dict[str, Any] = {}
            for name, path in _pages(rows, now, page.next_cursor).items():
                times = []
                for i in range(samples + 2):
                    t0 = time.perf_counter()
                    r = await client.get(path)
                    ms = (time.perf_counter() - t0) * 1e3
                    assert r.status_code in (200, 303), (path, r.status_code, r.text[:300])
                    if i >= 2:
                        times.append(ms)
                out[name] = {"path": path, "n": len(times), "p50": pct(times, 50),
                             "p95": pct(times, 95), "max": max(times),
                             "bytes": len(r.content)}
                print(f"{name:32s} p50 {out[name]['p50']:7.1f} ms  p95 "
                      f"{out[name]['p95']:7.1f}  max {out[name]['max']:7.1f}",
                      file=sys.stderr, flush=True)
            return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    dbs = Databases(args.db, args.dir)
    url = await dbs.fresh("dashboard")
    res: dict[str, Any] = {"rows": args.rows}
    try:
        async with Engine(url, worker=False):
            pass  # the schema
        now = time.time()
        res["fill_seconds"] = await fill(url, args.rows, now)
        print(f"filled {args.rows} runs in {res['fill_seconds']:.1f} s", file=sys.stderr,
              flush=True)
        res["pages"] = await measure(url, args.rows, now, args.samples)
        res["load_average"] = os.getloadavg()
    finally:
        await dbs.drop(url)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL admin URL")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=20, help="fetches per page")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
