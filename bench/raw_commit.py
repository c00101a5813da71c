"""Physical floor: cost of one raw single-row durable commit.

Stdlib only (psycopg and asyncpg are optional imports for ``--db postgresql://...``)::

    .venv/bin/python bench/raw_commit.py --out raw.json
    .venv/bin/python bench/raw_commit.py --db postgresql://user:pw@localhost/db --out raw-pg.json

SQLite mode: N sequential ``INSERT INTO t VALUES(?, ?)`` + ``commit()``, each its own
transaction, on a fresh file in a temp dir (under ``bench/`` by default, i.e. the
same filesystem as the project; ``--dir`` to change), for each configuration:

* ``wal_full``     journal_mode=WAL,    synchronous=FULL
* ``wal_normal``   journal_mode=WAL,    synchronous=NORMAL  (no fsync per commit;
  durable against process crash, not power loss)
* ``delete_full``  journal_mode=DELETE, synchronous=FULL    (SQLite's defaults,
  which is what DBOS Transact 3.4's SQLite system database runs with)

PostgreSQL mode: same loop against a regular (WAL-logged) table with the server's
``synchronous_commit`` setting, which is recorded, with each driver that is installed:

* ``pg``          psycopg 3 (sync), ``INSERT`` then ``commit()``: two round trips
* ``pg_asyncpg``  asyncpg (Perdure's driver), one ``INSERT`` in autocommit: one round trip,
  one WAL flush, the least a durable single-row commit can cost from Python
* ``pg_asyncpg_txn``  asyncpg, ``BEGIN; INSERT; COMMIT`` in an explicit transaction (what a
  fenced write inside ``async with conn.transaction()`` costs)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SQLITE_CONFIGS: dict[str, tuple[str, str]] = {
    "wal_full": ("WAL", "FULL"),
    "wal_normal": ("WAL", "NORMAL"),
    "delete_full": ("DELETE", "FULL"),
}


def sqlite_commit_loop(
    directory: Path, journal_mode: str, synchronous: str, n: int
) -> dict[str, Any]:
    """Time ``n`` single-row autocommitted INSERTs on a fresh SQLite file.

    Returns mean per-commit microseconds plus per-commit percentiles and the
    PRAGMA values actually in effect.
    """
    with tempfile.TemporaryDirectory(prefix="raw-commit-", dir=directory) as d:
        path = Path(d) / "raw.sqlite"
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one txn per row.
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            got_mode = conn.execute(f"PRAGMA journal_mode={journal_mode}").fetchone()[0]
            conn.execute(f"PRAGMA synchronous={synchronous}")
            got_sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            payload = "x" * 64
            # Warm-up (not counted): page cache, WAL file creation.
            for k in range(-50, 0):
                conn.execute("BEGIN")
                conn.execute("INSERT INTO t VALUES(?, ?)", (k, payload))
                conn.execute("COMMIT")
            lat: list[float] = []
            t0 = time.perf_counter()
            for k in range(n):
                a = time.perf_counter()
                conn.execute("BEGIN")
                conn.execute("INSERT INTO t VALUES(?, ?)", (k, payload))
                conn.execute("COMMIT")
                lat.append(time.perf_counter() - a)
            total = time.perf_counter() - t0
            assert conn.execute("SELECT count(*) FROM t WHERE k >= 0").fetchone()[0] == n
        finally:
            conn.close()
    return _loop_result(total, lat, n, {"journal_mode": got_mode, "synchronous": got_sync})


def pg_commit_loop(url: str, n: int) -> dict[str, Any]:
    """Time ``n`` single-row INSERT+COMMIT round trips against PostgreSQL (psycopg 3)."""
    import psycopg  # optional dependency

    table = "perdure_raw_commit_bench"
    with psycopg.connect(url, autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TABLE {table} (k BIGINT PRIMARY KEY, v TEXT NOT NULL)")
            settings = {}
            for name in ("synchronous_commit", "fsync", "wal_sync_method", "server_version"):
                cur.execute(f"SHOW {name}")
                row = cur.fetchone()
                settings[name] = row[0] if row else None
        conn.commit()
        payload = "x" * 64
        sql = f"INSERT INTO {table} VALUES (%s, %s)"
        try:
            with conn.cursor() as cur:
                for k in range(-50, 0):
                    cur.execute(sql, (k, payload))
                    conn.commit()
                lat: list[float] = []
                t0 = time.perf_counter()
                for k in range(n):
                    a = time.perf_counter()
                    cur.execute(sql, (k, payload))
                    conn.commit()
                    lat.append(time.perf_counter() - a)
                total = time.perf_counter() - t0
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
    return _loop_result(total, lat, n, settings)


def pg_asyncpg_loop(url: str, n: int, *, explicit_txn: bool) -> dict[str, Any]:
    """Time ``n`` single-row durable commits with asyncpg (autocommit INSERT, or
    ``BEGIN; INSERT; COMMIT``)."""
    import asyncio

    import asyncpg  # optional dependency

    table = "perdure_raw_commit_bench_a"

    async def main() -> dict[str, Any]:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
            await conn.execute(f"CREATE TABLE {table} (k BIGINT PRIMARY KEY, v TEXT NOT NULL)")
            settings = {name: await conn.fetchval(f"SHOW {name}")
                        for name in ("synchronous_commit", "fsync", "wal_sync_method",
                                     "server_version")}
            payload = "x" * 64
            stmt = await conn.prepare(f"INSERT INTO {table} VALUES ($1, $2)")

            async def one(k: int) -> None:
                if explicit_txn:
                    async with conn.transaction():
                        await stmt.fetch(k, payload)
                else:
                    await stmt.fetch(k, payload)

            for k in range(-50, 0):
                await one(k)
            lat: list[float] = []
            t0 = time.perf_counter()
            for k in range(n):
                a = time.perf_counter()
                await one(k)
                lat.append(time.perf_counter() - a)
            total = time.perf_counter() - t0
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            await conn.close()
        return _loop_result(total, lat, n, settings)

    return asyncio.run(main())


def _loop_result(
    total: float, lat: list[float], n: int, settings: dict[str, Any]
) -> dict[str, Any]:
    lat.sort()
    return {
        "us_per_commit": total / n * 1e6,
        "p50_us": lat[n // 2] * 1e6,
        "p99_us": lat[min(n - 1, int(0.99 * n))] * 1e6,
        "settings": settings,
    }


def _stat(values: list[float], unit: str) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "unit": unit,
        "samples": values,
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="'sqlite' or a postgresql:// URL")
    ap.add_argument("--out", type=Path, help="write JSON report here")
    ap.add_argument("-n", type=int, default=2000, help="commits per repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="parent dir for the temporary SQLite files (default: bench/)",
    )
    args = ap.parse_args(argv)
    is_sqlite = args.db == "sqlite"
    if not is_sqlite and not args.db.startswith(("postgresql://", "postgres://")):
        ap.error("--db must be 'sqlite' or a postgresql:// URL")

    runs: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    if is_sqlite:
        for r in range(args.repeat):  # interleave configurations across repeats
            for name, (mode, sync) in SQLITE_CONFIGS.items():
                res = sqlite_commit_loop(args.dir, mode, sync, args.n)
                runs.setdefault(name, []).append(res)
                print(
                    f"[repeat {r + 1}/{args.repeat}] {name}: {res['us_per_commit']:.1f} us/commit",
                    file=sys.stderr,
                    flush=True,
                )
        notes.append(
            f"Python sqlite3, one connection, explicit BEGIN/INSERT/COMMIT per row, "
            f"N={args.n} per repeat after 50 uncounted warm-up commits; file under {args.dir}."
        )
        notes.append(
            "synchronous values read back: 2=FULL, 1=NORMAL. WAL+NORMAL does not fsync "
            "on commit (only at checkpoints), so it survives process crashes but not "
            "power loss; FULL fsyncs the WAL on every commit. delete_full = SQLite "
            "defaults = what DBOS 3.4 uses for its SQLite system database."
        )
    else:
        import importlib.util

        loops: dict[str, Any] = {}
        if importlib.util.find_spec("psycopg") is not None:
            loops["pg"] = lambda: pg_commit_loop(args.db, args.n)
            notes.append(f"pg: psycopg 3, one connection, INSERT + commit() per row, N={args.n}.")
        if importlib.util.find_spec("asyncpg") is not None:
            loops["pg_asyncpg"] = lambda: pg_asyncpg_loop(args.db, args.n, explicit_txn=False)
            loops["pg_asyncpg_txn"] = lambda: pg_asyncpg_loop(args.db, args.n,
                                                              explicit_txn=True)
            notes.append(f"pg_asyncpg: asyncpg, one connection, a prepared INSERT in autocommit "
                         f"per row (one round trip); pg_asyncpg_txn: the same inside "
                         f"BEGIN...COMMIT (three round trips); N={args.n}.")
        if not loops:
            print("neither psycopg nor asyncpg installed; skipping PostgreSQL mode",
                  file=sys.stderr)
            return 0
        for r in range(args.repeat):
            for name, loop in loops.items():
                res = loop()
                runs.setdefault(name, []).append(res)
                print(
                    f"[repeat {r + 1}/{args.repeat}] {name}: {res['us_per_commit']:.1f} "
                    "us/commit",
                    file=sys.stderr,
                    flush=True,
                )

    workloads: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        workloads[name] = _stat([x["us_per_commit"] for x in rs], "us/commit (mean over N)")
        workloads[name]["p50_us"] = statistics.median(x["p50_us"] for x in rs)
        workloads[name]["p99_us"] = statistics.median(x["p99_us"] for x in rs)
        workloads[name]["settings"] = rs[0]["settings"]
    report: dict[str, Any] = {
        "engine": "raw",
        "version": platform.python_version(),
        "backend": "sqlite" if is_sqlite else "postgresql",
        "sqlite_version": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "n": args.n,
        "repeat": args.repeat,
        "workloads": workloads,
        "notes": notes,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"raw commit floor on {report['backend']} (sqlite {report['sqlite_version']}), "
        f"N={args.n}, repeats={args.repeat}"
    )
    for name, st in workloads.items():
        print(
            f"  {name:12s} median {st['median']:9.1f} us/commit  "
            f"[{st['min']:.1f} .. {st['max']:.1f}]  "
            f"p50 {st['p50_us']:.1f}  p99 {st['p99_us']:.1f}  {st['settings']}"
        )
    for n in notes:
        print(f"  note: {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
