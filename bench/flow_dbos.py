"""Flow control, DBOS Transact 3.4 side: the queue workloads of ``flow_bench.py``.

Runs under the benchmark-only venv created by ``bench/setup_dbos.sh``::

    bench/.venv-dbos/bin/python bench/flow_dbos.py --db sqlite --out /tmp/flow-dbos.json
    bench/.venv-dbos/bin/python bench/flow_dbos.py --db postgresql://u@host:5432/postgres

Workloads (each repeat on a fresh system database, after 20 uncounted warm-up workflows run
directly), with ``DBOS.register_queue("q", global_concurrency=10)`` and its defaults (DBOS
polls a queue every ``polling_interval_sec`` = 1 s):

``drain``
    1,000 workflows of one async step enqueued with ``queue.enqueue_async`` one after another:
    the time from the first enqueue to the last result (runs/s), and each workflow's start
    latency (its ``enqueue_async`` call -> its step's first line), p50/p99.
``idle``
    The same queue, idle: 30 single workflows one after another (random 0-1000 ms gaps, so the
    enqueues do not lock in phase with the poll), enqueue -> first line, p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import random
import statistics
import sys
import time
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

from dbos import DBOS, Queue

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dbos_workloads import Target, _drop_pg_database, _launch

queue: Queue | None = None  # registered on each fresh system database (DBOS 3.4 persists it)
first_line: dict[str, float] = {}


@DBOS.step()
async def marked(i: int) -> int:
    wf_id = DBOS.workflow_id
    assert wf_id is not None
    first_line[wf_id] = time.perf_counter()
    return i + 1


@DBOS.workflow()
async def in_queue(i: int) -> int:
    return await marked(i)


def pct(values: list[float], q: float) -> float:
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, round(q / 100 * len(xs) + 0.5) - 1))
    return xs[k]


def stat(values: list[float], unit: str) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "samples": values}


async def _warmup() -> None:
    for i in range(20):
        await in_queue(i)


async def drain() -> dict[str, float]:
    first_line.clear()
    started: dict[str, float] = {}
    t0 = time.perf_counter()
    handles = []
    for i in range(1000):
        at = time.perf_counter()
        assert queue is not None
        h = await queue.enqueue_async(in_queue, i)
        started[h.get_workflow_id()] = at
        handles.append(h)
    for h in handles:
        await h.get_result()
    elapsed = time.perf_counter() - t0
    lat = [(first_line[w] - started[w]) * 1000 for w in started]
    return {"runs_s": 1000 / elapsed, "p50": pct(lat, 50), "p99": pct(lat, 99)}


async def idle(n: int) -> dict[str, float]:
    lat = []
    for i in range(n):
        await asyncio.sleep(random.uniform(0, 1.0))
        first_line.clear()
        at = time.perf_counter()
        assert queue is not None
        h = await queue.enqueue_async(in_queue, i)
        await h.get_result()
        lat.append((first_line[h.get_workflow_id()] - at) * 1000)
    return {"p50": pct(lat, 50), "p99": pct(lat, 99)}


def run_one(target: Target, body: Any) -> dict[str, float]:
    global queue
    url = target.fresh_url()
    _launch(url, target.is_sqlite)
    queue = DBOS.register_queue("q", global_concurrency=10)
    try:
        async def main() -> dict[str, float]:
            await _warmup()
            result: dict[str, float] = await body()
            return result

        return asyncio.run(main())
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=0)
        if target.is_sqlite:
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            path.parent.rmdir()
        else:
            _drop_pg_database(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--dir", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--idle", type=int, default=30)
    ap.add_argument("--out")
    args = ap.parse_args()
    logging.getLogger("dbos").setLevel(logging.WARNING)
    target = Target(args.db, Path(args.dir))
    drains = [run_one(target, drain) for _ in range(args.repeat)]
    idles = [run_one(target, lambda: idle(args.idle)) for _ in range(args.repeat)]
    report = {
        "engine": "dbos", "version": pkg_version("dbos"),
        "backend": "sqlite" if target.is_sqlite else "postgresql",
        "python": platform.python_version(),
        "workloads": {
            "drain_runs_per_s": stat([d["runs_s"] for d in drains], "runs/s"),
            "drain_start_p50": stat([d["p50"] for d in drains], "ms"),
            "drain_start_p99": stat([d["p99"] for d in drains], "ms"),
            "idle_start_p50": stat([d["p50"] for d in idles], "ms"),
            "idle_start_p99": stat([d["p99"] for d in idles], "ms"),
        },
        "notes": "DBOS.register_queue('q', global_concurrency=10) with DBOS's defaults "
                 "(polling_interval_sec=1.0).",
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
