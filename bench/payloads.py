"""A 20 MB value through 10 steps: memory and time with and without blob offload.

    .venv/bin/python bench/payloads.py                         # SQLite; writes bench/payloads.md
    .venv/bin/python bench/payloads.py --pg postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/payloads.py --pg auto               # starts a throwaway PG 15 server

Workload (``pipeline`` below): a run is started with a 20 MiB ``str`` argument; each of 10 steps
returns a new 20 MiB string (the tail changed, so no two payloads are equal and the blob store's
content addressing saves nothing); then the run waits for a signal and parks (``park_after``
0.2 s), and a signal resumes it, which replays the whole journal before it returns. So 11
payloads of 20 MiB are stored, and each is read back once on the replay.

Every configuration runs in its own fresh interpreter (one measurement, one process), which is
both client and worker. Reported: the time from start to parked (the first execution: 10 steps,
11 payloads written), the time from the signal to the result (the replay: the journal loaded,
10 payloads decoded), the peak RSS of the process (VmHWM) and the bytes on disk (database file
or PostgreSQL's database size, plus the blob directory).

Configurations: no offload (``max_payload`` raised to 64 MiB, payloads in the journal rows),
offload to the database's blob table (``blobs="database"``), offload to a directory
(``DirectoryBlobs``), and the directory with ``Encrypted(..., compress_above=1 KiB)`` on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import perdure  # noqa: E402
from perdure import DirectoryBlobs, Encrypted, Engine, step, workflow  # noqa: E402

MIB = 1024 * 1024
SIZE = 20 * MIB
STEPS = 10
CONFIGS = ["inline", "database", "directory", "directory+encrypted"]


@step
async def transform(data: str, i: int) -> str:
    return data[:-8] + f"{i:08d}"


@workflow
async def pipeline(data: str) -> int:
    for i in range(STEPS):
        data = await transform(data, i)
    await perdure.wait_for_signal("finish")
    return len(data)


def _hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


async def _one(config: str, url: str, workdir: Path) -> dict[str, Any]:
    options: dict[str, Any] = {"max_payload": 64 * MIB, "park_after": 0.2}
    if config == "database":
        options["blobs"] = "database"
    elif config.startswith("directory"):
        options["blobs"] = DirectoryBlobs(workdir / "blobs")
    if config.endswith("encrypted"):
        options["codec"] = Encrypted(keys={"k1": os.urandom(32)}, current="k1",
                                     compress_above=1024)
    value = random.Random(7).randbytes(SIZE // 2).hex()  # 20 MiB of text, made cheaply
    baseline = _hwm_kb()
    async with Engine(url, workflows=[pipeline], **options) as engine:
        t0 = time.perf_counter()
        handle = await engine.start(pipeline, value, id="p")
        del value
        while (await handle.status()).status.value != "waiting":
            await asyncio.sleep(0.02)
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        await engine.signal("p", "finish")
        assert await handle.result(timeout=600) == SIZE
        replay = time.perf_counter() - t1
    size = _du(workdir)
    if url.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            size += int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()
    return {"config": config, "first_s": first, "replay_s": replay,
            "peak_rss_mib": _hwm_kb() / 1024, "baseline_rss_mib": baseline / 1024,
            "disk_mib": size / MIB}


def _child(config: str, pg: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="perdure-payloads-") as d:
        url = f"sqlite:///{d}/perdure.db"
        name = None
        if pg:
            import psycopg

            name = f"payloads_{os.getpid()}_{config.replace('+', '_')}"
            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = pg.rsplit("/", 1)[0] + f"/{name}"
        try:
            out = subprocess.run([sys.executable, __file__, "--one", config, "--url", url,
                                  "--dir", d], capture_output=True, text=True, check=True)
        finally:
            if name is not None:
                import psycopg

                with psycopg.connect(pg, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _rounds(configs: list[str], pg: str | None, rounds: int) -> list[dict[str, Any]]:
    """Every configuration once per round, in turn (a burst of other load on the machine hits
    them alike); per configuration the median times and the largest peak."""
    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    for _ in range(rounds):
        for c in configs:
            samples[c].append(_child(c, pg))
    out = []
    for c, runs in samples.items():
        merged = {"config": c, "samples": runs}
        for key in ("first_s", "replay_s", "disk_mib", "baseline_rss_mib"):
            merged[key] = statistics.median(r[key] for r in runs)
        merged["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        out.append(merged)
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| configuration | first execution (s) | replay (s) | peak RSS (MiB) "
             "| RSS before the run (MiB) | on disk (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['first_s']:.2f} | {r['replay_s']:.2f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['baseline_rss_mib']:.0f} | "
                     f"{r['disk_mib']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one")
    parser.add_argument("--url")
    parser.add_argument("--dir")
    parser.add_argument("--pg", help="admin URL of a PostgreSQL server, or 'auto'")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (medians of the times, max of the peaks)")
    parser.add_argument("--out", default=str(BENCH / "payloads.json"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(_one(args.one, args.url, Path(args.dir)))))
        return 0
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                          f"Python {platform.python_version()}",
                               "rounds": args.rounds}
    results["sqlite"] = _rounds(CONFIGS, None, args.rounds)
    server: Any = None
    pg = args.pg
    if pg == "auto":
        sys.path.insert(0, str(ROOT / "tests"))
        from pgserver import PostgresServer

        server = PostgresServer()
        server.start()
        pg = server.url("postgres")
    try:
        if pg:
            results["postgres"] = _rounds([c for c in CONFIGS if c != "directory"], pg,
                                          args.rounds)
    finally:
        if server is not None:
            server.stop()
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    for backend in ("sqlite", "postgres"):
        if backend in results:
            print(f"\n{backend}\n{_table(results[backend])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
