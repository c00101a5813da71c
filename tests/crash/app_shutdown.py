"""A workflow whose sync step outlasts a worker's grace period (for the shutdown tests).

Started as ``python -m perdure worker tests.crash.app_shutdown:WORKFLOWS --db ... --grace G``.
The step reports ``started`` on the test's FIFO (see ``tests/crash/app.py``), then blocks its
thread for as many seconds as the run asks: a thread cannot be stopped, so only the process
exiting ends it.
"""

from __future__ import annotations

import time

import perdure
from perdure import step, workflow
from tests.crash.app import _emit

__all__ = ["WORKFLOWS", "long_sync"]


@step
def block(seconds: float) -> str:
    _emit("started", run=perdure.run_id())
    time.sleep(seconds)
    return "woke"


@workflow(name="long_sync")
async def long_sync(seconds: float) -> str:
    """One sync step that sleeps ``seconds``."""
    return await block(seconds)


WORKFLOWS = [long_sync]
