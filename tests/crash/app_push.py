"""The workflows of the push tests (``tests/crash/push``), driven by a worker process whose poll
for other processes' commits runs only every 5 s: what it notices sooner came by push.

Each workflow reports to the test's FIFO (``tests.crash.app``) with the wall-clock time at which
its body got to run, so the test measures start/signal → worker from its own clock (one host).
"""

from __future__ import annotations

import time

import perdure
from perdure import Engine, step, workflow
from tests.crash.app import _emit

#: far beyond any test: what the worker notices within it came by push
POLL = 5.0


@step
async def began(tag: str) -> float:
    now = time.time()
    _emit("began", run=perdure.run_id(), tag=tag, at=now)
    return now


@workflow
async def first(tag: str) -> float:
    """Reports as soon as it runs."""
    return await began(tag)


@workflow
async def listen(tag: str) -> str:
    """Waits in memory for ``go``, then reports."""
    _emit("waiting", run=perdure.run_id(), tag=tag)
    payload = str(await perdure.wait_for_signal("go", timeout=3600))
    await began(tag)
    return payload


PUSH_WORKFLOWS = [first, listen]

#: the command's ``--db`` replaces the URL; waits are held in memory (no parking)
SLOW_POLL = Engine("sqlite:///unused.db", workflows=PUSH_WORKFLOWS, poll_interval=POLL,
                   park_after=3600)
