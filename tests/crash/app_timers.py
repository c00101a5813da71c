"""The workflow of the timer-storm process test: thousands of runs whose timers fall due
together, each recording in the cluster's ledger (``tests.crash.app``) that its timer rang.

Started as ``python -m perdure worker tests.crash.app_timers:WORKFLOWS --db ...``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import perdure
from perdure import step, workflow
from tests.crash.app import _record

__all__ = ["WORKFLOWS", "alarm", "rang"]


@step(name="rang")
async def rang(due: float) -> float:
    """The side effect after the timer: one ledger line (run id, pid of the worker)."""
    _record("step", "rang", str(due))
    return time.time()


@workflow(name="alarm")
async def alarm(due: float) -> float:
    """Sleep until ``due`` (unix seconds), then ring: the wall time it rang."""
    await perdure.sleep_until(datetime.fromtimestamp(due, UTC))
    return await rang(due)


WORKFLOWS = [alarm]
