"""One run with a 100,000-entry journal (no continue-as-new): per-step cost at step 100 against
step 100,000, the replay after a SIGKILL, and the memory of the worker holding the run
(issue 14, target 5).

    .venv/bin/python bench/long_flat.py --steps 100000 --out /tmp/flat.json

On a fresh SQLite file (``--synchronous``, FULL by default), worker A (``--role worker``, its
own process, ``concurrency=1``) drives one run of ``flat``: ``--steps`` trivial steps, each
printing ``perf_counter`` at its start, then a wait for signal ``go`` held in memory. Then:

* **per-step cost** = the interval between consecutive steps' starts (the step's journal
  write and the next call): median over steps 1-1,000 ("step 100") and over the last 1,000
  ("step 100,000"), and the median of each tenth of the run;
* **replay after SIGKILL**: the bench sends ``go`` (buffered: the run is busy waiting in A's
  memory, so A consumes it... unless killed first: A is SIGKILLed as soon as the run waits),
  then starts worker B; replay = B's "engine open" -> the step ``after`` (B reaped A, claimed
  the run, loaded and replayed its journal, consumed ``go``);
* **memory**: B's VmRSS just after its engine opened and again once it holds the replayed run
  (the run then waits for ``stop``, in memory), and A's at the end of the build.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import perdure
from perdure import Engine, step, workflow


def rss_kb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            out[line.split(":")[0].lower()] = int(line.split()[1])
    return out


def say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


@step
async def tick(i: int) -> int:
    say({"i": i, "t": time.perf_counter()})
    return i


@step
async def after(n: int) -> int:
    say({"after": time.perf_counter(), **rss_kb()})
    return n


@workflow(name="flat")
async def flat(n: int) -> int:
    for i in range(n):
        await tick(i)
    say({"waiting": time.perf_counter(), **rss_kb()})
    await perdure.wait_for_signal("go")
    await after(n)
    say({"holding": time.perf_counter(), **rss_kb()})
    await perdure.wait_for_signal("stop")
    return n


async def worker(url: str, synchronous: str) -> None:
    async with Engine(url, workflows=[flat], synchronous=synchronous, concurrency=1,
                      park_after=86400):
        say({"ready": time.perf_counter(), **rss_kb()})
        await asyncio.Event().wait()


class Proc:
    def __init__(self, url: str, synchronous: str) -> None:
        self.url, self.sync = url, synchronous
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--role", "worker", "--db", self.url, "--synchronous",
            self.sync, stdout=asyncio.subprocess.PIPE, limit=2**24)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            await self.lines.put(json.loads(line))

    async def until(self, key: str, timeout: float = 7200) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.lines.get(), timeout)
            if key in msg:
                return msg

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    d = Path(tempfile.mkdtemp(prefix="perdure-bench-flat-", dir=args.dir))
    url = f"sqlite:///{d / 'flat.db'}"
    a = Proc(url, args.synchronous)
    await a.start()
    await a.until("ready")
    async with Engine(url, workflows=[flat], worker=False) as client:
        h = await client.start(flat, args.steps, id="flat")
        starts: list[float] = []
        while True:
            msg = await a.lines.get()
            if "i" in msg:
                starts.append(msg["t"])
            elif "waiting" in msg:
                a_rss = msg
                break
        a.kill()
        await a.proc.wait()  # type: ignore[union-attr]
        assert await h.signal("go", 1)
        b = Proc(url, args.synchronous)
        await b.start()
        ready = await b.until("ready")
        done = await b.until("after")
        holding = await b.until("holding")
        await h.signal("stop", 1)
        assert await h.result(timeout=600) == args.steps
        b.kill()
    gaps = [(y - x) * 1e3 for x, y in itertools.pairwise(starts)]
    tenth = max(1, len(gaps) // 10)
    out = {
        "steps": args.steps,
        "first_1000_ms": statistics.median(gaps[:1000]),
        "last_1000_ms": statistics.median(gaps[-1000:]),
        "tenths_ms": [statistics.median(gaps[k * tenth:(k + 1) * tenth]) for k in range(10)],
        "replay_s": done["after"] - ready["ready"],
        "a_rss_kb_holding_100k": a_rss["vmrss"],
        "b_rss_kb_open": ready["vmrss"],
        "b_rss_kb_holding": holding["vmrss"],
        "b_hwm_kb": holding["vmhwm"],
    }
    out["ratio_last_first"] = out["last_1000_ms"] / out["first_1000_ms"]
    import shutil

    shutil.rmtree(d, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", default="main")
    ap.add_argument("--db")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--synchronous", default="full")
    ap.add_argument("--dir", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.role == "worker":
        asyncio.run(worker(args.db, args.synchronous))
        return 0
    t0 = time.perf_counter()
    load = os.getloadavg()
    res = asyncio.run(measure(args))
    res.update({"synchronous": args.synchronous, "wall_s": time.perf_counter() - t0,
                "load_start": load, "load_end": os.getloadavg(),
                "perdure": perdure.__version__ if hasattr(perdure, "__version__") else "?"})
    print(json.dumps(res, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
