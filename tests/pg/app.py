"""Workflows the PostgreSQL multi-process tests run in real worker processes.

Started as ``python -m perdure worker tests.pg.app:WORKFLOWS --db postgresql://...``. Every step
execution appends one line ``RUN_ID:SEQ PID`` to the file named by ``PERDURE_PG_LEDGER`` (one
``write`` on an ``O_APPEND`` descriptor: lines never interleave), the external record of what
really executed. ``PERDURE_PG_STEP_MS`` is each step's simulated I/O time.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

import perdure
from perdure import Engine, Workflow, step, workflow

__all__ = ["PARKING", "WORKFLOWS", "chain", "collect", "kid", "nap_until", "parent", "race_client"]


def _ledger(line: str) -> None:
    path = os.environ.get("PERDURE_PG_LEDGER")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{line} {os.getpid()}\n".encode())
        finally:
            os.close(fd)


@step
async def work(i: int) -> int:
    """Simulated I/O, then the side effect (a ledger line)."""
    await asyncio.sleep(float(os.environ.get("PERDURE_PG_STEP_MS", "50")) / 1000)
    _ledger(perdure.step_key())
    return i


@workflow
async def chain(n: int) -> int:
    """``n`` steps one after another."""
    total = 0
    for i in range(n):
        total += await work(i)
    return total


@workflow
async def collect(n: int) -> list[str]:
    """Wait for ``n`` signals called ``item``; return their payloads in arrival order."""
    got: list[str] = []
    for _ in range(n):
        got.append(await perdure.wait_for_signal("item"))
    return got


@step
async def stamp() -> float:
    """The wall clock when the step ran (the parent's resumption, in the push tests)."""
    return time.time()


@workflow
async def kid() -> float:
    """A quick child: its run ends right after its one step."""
    return await stamp()


@workflow
async def parent() -> list[float]:
    """Start a child and wait for it; [the child's last step ran, the parent resumed]."""
    child = await perdure.start_child(kid)
    done = await child.result()
    return [done, await stamp()]


@workflow
async def nap_until(when: float) -> float:
    """A durable timer, then a step: the time the step ran."""
    await perdure.sleep_until(datetime.fromtimestamp(when, UTC))
    return await stamp()


WORKFLOWS: list[Workflow[Any, Any]] = [chain, collect, kid, parent, nap_until]

#: a worker whose waits park almost at once (rows, claimed back when due or woken), for
#: ``python -m perdure worker tests.pg.app:PARKING --db URL`` (the URL here is replaced)
PARKING = Engine("postgresql://unused@127.0.0.1/unused", workflows=WORKFLOWS, park_after=0.1)


def race_client(url: str, ids: list[str], tag: str, signals: int, barrier: Any,
                out: Any) -> None:
    """One of two processes racing: for each id, start ``collect`` with that id and send it
    ``signals`` signals, released by ``barrier`` at the same moment as the other process."""

    async def main() -> dict[str, list[bool]]:
        sent: dict[str, list[bool]] = {}
        async with Engine(url, workflows=WORKFLOWS, worker=False) as engine:
            await asyncio.to_thread(barrier.wait, 30)
            for run_id in ids:
                await engine.start(collect, 2 * signals, id=run_id)
                sent[run_id] = [await engine.signal(run_id, "item", f"{tag}-{i}")
                                for i in range(signals)]
        return sent

    try:
        out.put((tag, asyncio.run(main())))
    except BaseException as exc:  # reported to the test, which fails with it
        out.put((tag, repr(exc)))
        raise
