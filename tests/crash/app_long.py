"""A long-lived workflow for the continue-as-new crash tests: it loops, one step per iteration,
and continues as new every ``every`` iterations. Run as
``python -m perdure worker tests.crash.app_long:LONG --db ...``; the hang points of
``tests.crash.app`` apply to its step (``tick``), and ``continue@N`` (in
``PERDURE_CRASH_HANG``) hangs the workflow itself right before it continues as new after N
iterations."""

from __future__ import annotations

import perdure
from perdure import ContinueAsNew, step, workflow
from tests.crash.app import FAST, _effect, _hang, _hang_points

__all__ = ["LONG", "looping", "tick_key"]


@step(name="tick", retry=FAST)
async def tick(i: int) -> str:
    return await _effect("step", "tick")


@workflow(name="looping")
async def looping(total: int, done: int = 0, every: int = 3) -> int:
    """``total`` iterations, ``every`` of them per incarnation."""
    while done < total:
        await tick(done)
        done += 1
        if perdure.journal_size() >= every and done < total:
            if f"continue@{done}" in _hang_points():
                await _hang("workflow", "continue", perdure.run_id(), "before")
            raise ContinueAsNew(total, done, every)
    return done


def tick_key(run_id: str, i: int, every: int) -> str:
    """The idempotency key of iteration ``i``: its seq in its incarnation, and the incarnation
    as the key's generation."""
    seq, generation = i % every, i // every
    return f"{run_id}:{seq}" + (f":g{generation}" if generation else "")


LONG = [looping]
