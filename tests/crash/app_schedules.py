"""The workflow the schedule crash tests fire, run in real worker processes as
``python -m perdure worker tests.crash.app_schedules:SCHEDULE_WORKFLOWS --db ...``.

Its one step goes through :func:`tests.crash.app._effect`: recorded in the cluster's ledger
(with the run id, which names the slot) and honouring the hang points, so the test learns
through the FIFO exactly when to SIGKILL.
"""

from __future__ import annotations

from perdure import step, workflow
from tests.crash.app import FAST, _effect

__all__ = ["SCHEDULE_WORKFLOWS", "ticker"]


@step(name="tick", retry=FAST)
async def tick(tag: str) -> str:
    return await _effect("step", "tick")


@workflow(name="ticker")
async def ticker(tag: str) -> str:
    """What each slot of the schedule runs: one step."""
    return await tick(tag)


SCHEDULE_WORKFLOWS = [ticker]
