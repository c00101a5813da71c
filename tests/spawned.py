"""Client processes that race each other: each is spawned (never forked: the test process has
threads), waits on a shared barrier, and reports one value on a queue."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any


async def race_processes(target: Callable[..., None], args: Sequence[tuple[Any, ...]], *,
                         timeout: float = 30) -> list[Any]:
    """Run ``target(*a, barrier, queue)`` in one spawned process per ``a`` in ``args``; return
    what each put on the queue (in arrival order) once all exited with status 0."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args))
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, out)) for a in args]
    for p in procs:
        p.start()
    try:
        reports = [await asyncio.to_thread(out.get, timeout=timeout) for _ in procs]
        for p in procs:
            await asyncio.to_thread(p.join, timeout / 3)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        out.close()
        out.join_thread()
    assert [p.exitcode for p in procs] == [0] * len(procs), reports
    return reports
