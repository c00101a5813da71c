"""Long-lived runs: a workflow looping N iterations (one step each) that continues as new every
``--every`` iterations; per-iteration cost over the whole run, and the replay time after a
SIGKILL, against the same loop without continue-as-new.

    .venv/bin/python bench/long_runs.py --iterations 100000 --out /tmp/long.json
    .venv/bin/python bench/long_runs.py --iterations 1000000 --synchronous normal

Each scenario runs on a fresh SQLite file (``--synchronous``, FULL by default) with worker
*processes* (``--role worker``: an engine driving ``looper``), so that a kill is a real
SIGKILL. The step prints a time stamp every 1,000 iterations (and at the first iteration a
process executes); this process reads them:

* **per-iteration cost**: the time between two stamps / 1,000, for every block of 1,000
  iterations (each block with continue-as-new includes one continue-as-new: archiving the
  incarnation's 1,000 entries, requeueing, claiming it again);
* **replay after SIGKILL**: worker A is SIGKILLed once it passes iteration ``kill_at`` (placed
  mid-incarnation); worker B starts; replay time = B's engine open -> the first iteration B
  executes (reaping A, claiming the run, loading and replaying the journal).

Without continue-as-new the same loop is killed after 10,000 / 50,000 / 100,000 iterations
(``--compare``), to show what the replay costs when the journal is never cut.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import perdure
from perdure import ContinueAsNew, Engine, step, workflow

MARK = 1000
_first = True


@step
async def tick(i: int) -> int:
    global _first
    if _first or i % MARK in (0, MARK - 1) or i == int(os.environ.get("LONG_KILL_AT", "-1")):
        print(json.dumps({"i": i, "t": time.time(), "first": _first}), flush=True)
        _first = False
    return i


@workflow(name="looper")
async def looper(total: int, done: int = 0, every: int = 1000) -> int:
    while done < total:
        await tick(done)
        done += 1
        if every and perdure.journal_size() >= every and done < total:
            raise ContinueAsNew(total, done, every)
    return done


async def worker(url: str, synchronous: str) -> None:
    async with Engine(url, workflows=[looper], synchronous=synchronous, concurrency=1):
        print(json.dumps({"ready": time.time()}), flush=True)
        await asyncio.Event().wait()


class Proc:
    def __init__(self, url: str, synchronous: str, kill_at: int | None) -> None:
        env = dict(os.environ)
        if kill_at is not None:
            env["LONG_KILL_AT"] = str(kill_at)
        self.url, self.sync, self.env = url, synchronous, env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--role", "worker", "--db", self.url,
            "--synchronous", self.sync, stdout=asyncio.subprocess.PIPE, env=self.env)
        line = await self.line()
        return float(line["ready"])

    async def line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError("the worker exited")
        data: dict[str, Any] = json.loads(raw)
        return data

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


async def scenario(root: Path, synchronous: str, total: int, every: int,
                   kill_at: int | None) -> dict[str, Any]:
    d = Path(tempfile.mkdtemp(prefix="long-", dir=root))
    url = f"sqlite:///{d}/perdure.db"
    marks: dict[int, float] = {}
    out: dict[str, Any] = {"iterations": total, "every": every, "kill_at": kill_at}
    a = Proc(url, synchronous, kill_at)
    b = Proc(url, synchronous, None)
    try:
        await a.start()
        async with Engine(url, workflows=[looper], worker=False) as client:
            handle = await client.start(looper, total, 0, every, id="loop")
            t0 = time.time()
            while True:
                line = await a.line()
                marks[line["i"]] = line["t"]
                if kill_at is not None and line["i"] >= kill_at:
                    await a.kill()
                    break
                if line["i"] == (total - 1) // MARK * MARK:
                    break
            if kill_at is not None:
                info = await client.status("loop")
                journal = await client.journal("loop")
                out["journal_at_kill"] = len(journal)
                out["incarnation_at_kill"] = info.incarnation
                ready = await b.start()
                first = await b.line()
                out["replay_s"] = first["t"] - ready
                out["resumed_at"] = first["i"]
                while first["i"] < (total - 1) // MARK * MARK:
                    first = await b.line()
                    marks[first["i"]] = first["t"]
            assert await handle.result(timeout=3600) == total
            out["total_s"] = time.time() - t0
            out["incarnations"] = (await handle.status()).incarnation
    finally:
        await a.kill()
        await b.kill()
        shutil.rmtree(d, ignore_errors=True)
    blocks = []
    for i in sorted(marks):
        if i % MARK == 0 and i + MARK in marks and (kill_at is None
                                                     or not i <= kill_at < i + MARK):
            blocks.append((marks[i + MARK] - marks[i]) / MARK * 1000)  # ms per iteration
    # The last iteration of an incarnation -> the first of the next: one continue-as-new
    # (archive the journal, requeue, claim again, replay the empty journal) and one step.
    gaps = [(marks[i + 1] - marks[i]) * 1000 for i in sorted(marks)
            if i % MARK == MARK - 1 and i + 1 in marks and (kill_at is None or i != kill_at)]
    steps = [(marks[i] - marks[i - MARK + 1]) / (MARK - 1) * 1000 for i in sorted(marks)
             if i % MARK == MARK - 1 and i - MARK + 1 in marks
             and (kill_at is None or not i - MARK + 1 <= kill_at <= i)]
    if gaps and every:
        out["continue_as_new_ms"] = {"median": statistics.median(gaps), "max": max(gaps),
                                     "step_ms_median": statistics.median(steps)}
    tenth = max(1, len(blocks) // 10)
    out["per_iteration_ms"] = {
        "median": statistics.median(blocks), "max_block": max(blocks), "blocks": len(blocks),
        # the median block of each tenth of the run, first to last: flat, or growing?
        "by_tenth": [round(statistics.median(blocks[k:k + tenth]), 4)
                     for k in range(0, len(blocks), tenth)][:10]}
    return out


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--role", default="main")
    p.add_argument("--db")
    p.add_argument("--iterations", type=int, default=100_000)
    p.add_argument("--every", type=int, default=1000)
    p.add_argument("--synchronous", default="full")
    p.add_argument("--compare", default="10000,50000,100000",
                   help="kill points of the loop without continue-as-new ('' to skip)")
    p.add_argument("--dir", default=str(Path(__file__).resolve().parent))
    p.add_argument("--out")
    args = p.parse_args()
    if args.role == "worker":
        await worker(args.db, args.synchronous)
        return
    root = Path(args.dir)
    kill_at = args.iterations // 2 + args.every // 2 + 37  # mid-incarnation
    results: dict[str, Any] = {"synchronous": args.synchronous, "host_cpus": os.cpu_count()}
    print(f"continue-as-new every {args.every}, {args.iterations} iterations, SIGKILL at "
          f"{kill_at} ...", flush=True)
    results["with_continue_as_new"] = await scenario(root, args.synchronous, args.iterations,
                                                     args.every, kill_at)
    print(json.dumps(results["with_continue_as_new"], indent=1), flush=True)
    results["without"] = []
    for n in [int(x) for x in args.compare.split(",") if x]:
        print(f"no continue-as-new, SIGKILL after {n} iterations ...", flush=True)
        r = await scenario(root, args.synchronous, n + 2 * MARK, 0, n)
        print(json.dumps(r, indent=1), flush=True)
        results["without"].append(r)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
