"""Serverless hosts as real short-lived processes: ``perdure run-once`` invocations, one after
another (some SIGKILLed at a random moment), with ``perdure tick`` now and then, until a
workload of 200 runs with timers and signals completes with the crash-free results."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from perdure import Engine, RunStatus
from tests.crash.harness import ROOT
from tests.crash.hosts.app import expected, hosted

pytestmark = pytest.mark.crash

RUNS = 200


def _spawn(args: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PERDURE_LOG": "WARNING"}
    with open(log, "ab") as err:
        return subprocess.Popen([sys.executable, "-m", "perdure", *args,
                                 "tests.crash.hosts.app:ENGINE", "--db", url],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)


async def _kill_while_driving(proc: subprocess.Popen[bytes], client: Engine,
                              delay: float) -> bool:
    """SIGKILL the invocation ``delay`` s after it holds a run (by state: a run is running);
    False if it ended first."""
    while not await client.list_runs(status=RunStatus.RUNNING, limit=1):
        if proc.poll() is not None:
            return False  # ended before it held a run: _finish reads its summary
        await asyncio.sleep(0.01)  # a poll of the database, the only place the state shows
    await asyncio.sleep(delay)
    # Kill only while it still holds a run: on a fast machine an invocation can park all of its
    # runs (they wait for signals) within the delay, and a kill then leaves nothing to recover.
    if proc.poll() is not None or not await client.list_runs(status=RunStatus.RUNNING, limit=1):
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # reap it and close its pipe
    return True


async def _finish(proc: subprocess.Popen[bytes]) -> dict[str, int]:
    """Wait for the invocation to end by itself; its summary."""
    out, _ = await asyncio.wait_for(asyncio.to_thread(proc.communicate), 30)
    assert proc.returncode == 0, f"invocation failed ({proc.returncode})"
    summary: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


async def test_two_hundred_runs_complete_through_killed_invocations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hosts.db'}"
    log = tmp_path / "invocations.log"
    rng = random.Random(1515)
    async with Engine(url, workflows=[hosted], worker=False) as client:
        for i in range(RUNS):
            await client.start(hosted, i, id=f"r{i}")
        signalled: set[int] = set()
        totals = {"claimed": 0, "recovered": 0, "killed": 0, "invocations": 0, "ticks": 0}
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 45
        while True:
            done = await client.list_runs(status=RunStatus.COMPLETED, limit=RUNS)
            if len(done) == RUNS:
                break
            assert loop.time() < give_up, f"not done: {len(done)}/{RUNS} completed, {totals}"
            # Signal half of the waiting runs before the next invocation, the rest later.
            for i in range(0, RUNS, 4):
                if i not in signalled and (totals["invocations"] > 3 or i % 8 == 0):
                    await client.signal(f"r{i}", "go", {"n": i}, idempotency_key="go")
                    signalled.add(i)
            totals["invocations"] += 1
            if totals["invocations"] % 4 == 0:
                ticked = await _finish(_spawn(["tick"], url, log))
                totals["ticks"] += 1
                totals["recovered"] += ticked["recovered"]
            proc = _spawn(["run-once", "--max-seconds", "1.5", "--max-runs", "40"], url, log)
            # Kill about a third of the invocations (always until two were killed) at a random
            # moment while they drive runs.
            if (totals["killed"] < 2 or rng.random() < 0.35) \
                    and await _kill_while_driving(proc, client, rng.uniform(0.0, 0.06)):
                totals["killed"] += 1
                continue
            summary = await _finish(proc)
            totals["claimed"] += summary["claimed"]
            totals["recovered"] += summary["recovered"]
        for i in range(RUNS):
            assert await client.handle(f"r{i}").result(timeout=1) == expected(i), i
        print(totals)
        assert totals["killed"] >= 2 and totals["recovered"] > 0
